"""The process's counters and histograms, exposed at ``/metrics`` (Prometheus text format).

One ``Telemetry`` per running system, with its own ``CollectorRegistry`` (no module-level
global: two systems in one process, as in the tests, count apart). prometheus-client does the
exposition format, the histogram buckets and the ``process_*`` collector, so none of that is
written here by hand.

Where each figure is counted:
- ``emails_total{template,outcome}``: the delivery worker (``sent|retried|dead``), inbound
  bounces (``bounced``) and the suppression check (``suppressed``).
- ``smtp_send_seconds``: the delivery worker, around one SMTP transaction.
- ``http_request_duration_seconds{route,method,status}``: the web app's access middleware.
- ``webhook_deliveries_total{outcome}``: the webhook worker.
- ``inbound_messages_total{kind,verdict}``: the inbound processor, once a message's
  handlers have run (``failed`` when they could not, after every try).
- ``inbound_spool_messages``: the inbound processor, each time it looks at the spool: how
  many received messages wait for their handlers (all processes' together).
- ``task_restarts_total{task}``, ``task_up{task}``, ``task_last_success_seconds{task}``: the
  supervisor of the long-running tasks.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "Telemetry"]


class Telemetry:
    """The metrics of one running system."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        self.emails_total = Counter(
            "mailflow_emails",
            "Emails by template and what became of them.",
            ["template", "outcome"],
            registry=r,
        )
        self.smtp_send_seconds = Histogram(
            "mailflow_smtp_send_seconds",
            "Time to hand one email to the SMTP server.",
            registry=r,
        )
        self.http_request_duration_seconds = Histogram(
            "mailflow_http_request_duration_seconds",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.webhook_deliveries_total = Counter(
            "mailflow_webhook_deliveries",
            "Webhook delivery attempts by outcome.",
            ["outcome"],
            registry=r,
        )
        self.inbound_messages_total = Counter(
            "mailflow_inbound_messages",
            "Messages received by the inbound SMTP server, by kind and verdict.",
            ["kind", "verdict"],
            registry=r,
        )
        self.inbound_spool_messages = Gauge(
            "mailflow_inbound_spool_messages",
            "Received messages kept and waiting for their handlers.",
            registry=r,
        )
        self.task_restarts_total = Counter(
            "mailflow_task_restarts",
            "Restarts of a long-running task after it failed.",
            ["task"],
            registry=r,
        )
        self.task_up = Gauge(
            "mailflow_task_up",
            "1 while a long-running task runs, 0 while it waits to be restarted.",
            ["task"],
            registry=r,
        )
        self.task_last_success_seconds = Gauge(
            "mailflow_task_last_success_seconds",
            "Unix time of a long-running task's last successful round.",
            ["task"],
            registry=r,
        )

    def exposition(self) -> bytes:
        """Everything this registry holds, in the Prometheus text format."""
        return generate_latest(self.registry)
