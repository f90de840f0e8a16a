"""/metrics: the outbox and sales gauges, the process's counters, Prometheus text format."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mailflow.bootstrap import System


def families(client: TestClient) -> dict[str, object]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def test_metrics_parse_as_prometheus_text_with_process_figures(api: TestClient) -> None:
    names = families(api)
    assert "process_cpu_seconds" in names
    assert "mailflow_outbox_messages" in names
    assert "mailflow_emails" in names  # counter family: mailflow_emails_total samples


def test_a_counted_figure_shows_with_its_labels(api: TestClient, system: System) -> None:
    system.telemetry.task_restarts_total.labels(task="sweeper").inc()
    text = api.get("/metrics").text
    assert 'mailflow_task_restarts_total{task="sweeper"} 1.0' in text
