"""The webhook worker: claims due deliveries and POSTs them, signed, to their endpoints.

One asyncio task runs it in ``mailflow serve`` and in ``mailflow worker``. It claims a batch
(``store.webhooks.WebhookStore.claim``: a lease, ``SKIP LOCKED`` on PostgreSQL, and at most one
delivery per endpoint and subject, the earliest), sends the batch with up to
``[webhooks] concurrency`` requests at once over pooled connections (one httpx2 client per
host, so a TLS connection verified for one name never carries another's requests), writes the
results in one transaction, and claims again at once when anything was sent (the next event of
a subject becomes claimable when the one before it is settled), else sleeps until a commit
queues a delivery (in this process by a hook, in another by PostgreSQL's NOTIFY), the next
retry is due, or ``POLL_SECONDS`` pass.

Every attempt is signed afresh (a new ``webhook-timestamp``, the wall clock's: receivers check
it against theirs) with the same ``webhook-id`` (the event's id). ``2xx`` is delivered; ``410``
gives up and disables the endpoint; any other answer, a timeout or a refused connection is
retried, ``retry_base_seconds`` doubling, until ``give_up_after_hours`` after it was queued.
Redirects are not followed (a ``3xx`` is a failed attempt). Before each connection the host is
resolved again and checked (``webhooks.guard``), and the request goes to the checked address.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx2

from mailflow import __version__
from mailflow.clock import Clock
from mailflow.domain.webhooks import RESPONSE_KEPT_BYTES, next_attempt, signature_header
from mailflow.mail.compose import address, compose, new_message_id, split_address
from mailflow.store import outbox
from mailflow.store.database import Transaction
from mailflow.store.webhooks import Claimed, EndpointRecord, Result, WebhookStore
from mailflow.telemetry import Telemetry
from mailflow.wakeable import Wakeable
from mailflow.webhooks import guard

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
USER_AGENT = f"mailflow-webhooks/{__version__}"
METRIC_OUTCOMES = {"delivered": "delivered", "retry": "retried", "failed": "failed", "gone": "gone"}


class WebhookWorker(Wakeable):
    def __init__(
        self,
        store: WebhookStore,
        clock: Clock,
        telemetry: Telemetry,
        notice: Callable[[Transaction, EndpointRecord], None],
        *,
        allow_http: bool = False,
        allow_private_networks: bool = False,
        timeout_seconds: float = 10.0,
        retry_base_seconds: float = 30.0,
        give_up_after_hours: float = 72.0,
        concurrency: int = 8,
        poll_seconds: float = POLL_SECONDS,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``wall``: the Unix time each attempt is signed with (receivers check it against
        their own clock, so it is the real time, not ``clock``)."""
        self.store = store
        self.clock = clock
        self.telemetry = telemetry
        self.notice = notice
        self.allow_http = allow_http
        self.allow_private = allow_private_networks
        self.timeout = timeout_seconds
        self.retry_base = retry_base_seconds
        self.give_up = timedelta(hours=give_up_after_hours)
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.wall = wall
        self._clients: dict[tuple[str, str, int], httpx2.AsyncClient] = {}
        self.delivered_count = 0

    async def run(self, stop: asyncio.Event | None = None, *, until_idle: bool = False) -> None:
        """Deliver until ``stop`` is set (or, with ``until_idle``, until nothing is due)."""
        woken = self._arm()
        stop = stop or asyncio.Event()
        try:
            while not stop.is_set():
                woken.clear()
                try:
                    worked = await self.run_once()
                except Exception:
                    # The database briefly away: try again at the next tick.
                    log.exception("webhook delivery round failed")
                    worked = False
                if worked:
                    continue
                if until_idle:
                    return  # nothing could be claimed: nothing is due now
                next_due = await asyncio.to_thread(self.store.next_due)
                await self._sleep(stop, next_due)
        finally:
            for client in self._clients.values():
                with contextlib.suppress(Exception):
                    await client.aclose()
            self._clients.clear()
            self._loop = None

    async def _sleep(self, stop: asyncio.Event, next_due: datetime | None) -> None:
        assert self._wake is not None
        timeout = self.poll_seconds
        if next_due is not None:
            timeout = max(0.01, min(timeout, (next_due - self.clock()).total_seconds()))
        waits = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    async def run_once(self) -> bool:
        """Claim one batch, send it, record the results; whether anything was claimed."""
        claimed = await asyncio.to_thread(self.store.claim, self.concurrency * 2, self.clock())
        if not claimed:
            return False
        gate = asyncio.Semaphore(self.concurrency)

        async def one(item: Claimed) -> Result:
            async with gate:
                return await self.attempt(item)

        try:
            results = await asyncio.gather(*(one(item) for item in claimed))
        except asyncio.CancelledError:
            await asyncio.to_thread(self.store.release, claimed)
            raise
        await asyncio.to_thread(self.store.record, results, self.notice)
        for result in results:
            self.telemetry.webhook_deliveries_total.labels(METRIC_OUTCOMES[result.outcome]).inc()
            if result.outcome == "delivered":
                self.delivered_count += 1
        return True

    # -- one attempt ---------------------------------------------------------------------

    async def attempt(self, item: Claimed) -> Result:
        started = time.monotonic()
        status: int | None = None
        answer = ""
        error: str | None = None
        try:
            target = guard.parse(item.url, allow_http=self.allow_http)
            addresses = await guard.resolve_async(target, allow_private=self.allow_private)
            status, answer = await self._post(target, addresses[0], item)
        except guard.UrlRefused as exc:
            error = f"refused: {exc}"
        except httpx2.TimeoutException as exc:
            error = f"timed out after {self.timeout:g} s ({type(exc).__name__})"
        except (httpx2.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration_ms = round((time.monotonic() - started) * 1000)
        now = self.clock()
        common = {
            "id": item.id,
            "endpoint_id": item.endpoint_id,
            "lease_until": item.lease_until,
            "at": now,
            "duration_ms": duration_ms,
            "status_code": status,
            "response": answer,
        }
        if status is not None and 200 <= status < 300:
            return Result(outcome="delivered", **common)  # type: ignore[arg-type]
        if status == 410:
            log.warning("webhook endpoint %s answered 410: disabled", item.endpoint_id)
            return Result(outcome="gone", error="410 Gone", **common)  # type: ignore[arg-type]
        if error is None:
            error = f"answered {status}"
            if status is not None and 300 <= status < 400:
                error += " (redirects are not followed)"
        retry_at = next_attempt(item.queued_at, item.attempts, now, self.retry_base, self.give_up)
        if retry_at is None:
            log.warning("webhook delivery %s given up: %s", item.id, error)
            return Result(outcome="failed", error=error, **common)  # type: ignore[arg-type]
        return Result(outcome="retry", error=error, next_attempt_at=retry_at, **common)  # type: ignore[arg-type]

    def _client(self, target: guard.Target) -> httpx2.AsyncClient:
        key = (target.scheme, target.host, target.port)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = httpx2.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                trust_env=False,  # no proxy from the environment: it would undo the address check
                limits=httpx2.Limits(
                    max_connections=self.concurrency, max_keepalive_connections=self.concurrency
                ),
            )
        return client

    async def _post(self, target: guard.Target, ip: str, item: Claimed) -> tuple[int, str]:
        timestamp = int(self.wall())
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "identity",  # the answer is kept as text, not compressed bytes
            "webhook-id": item.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                item.secrets, item.webhook_id, timestamp, item.body
            ),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = self._client(target).build_request(
            "POST",
            target.url_for(ip),
            content=item.body,
            headers=headers,
            extensions=extensions,
        )
        response = await self._client(target).send(request, stream=True)
        try:
            kept = bytearray()
            async for chunk in response.aiter_raw():
                kept += chunk
                if len(kept) >= RESPONSE_KEPT_BYTES:
                    break
        finally:
            await response.aclose()
        return response.status_code, bytes(kept[:RESPONSE_KEPT_BYTES]).decode(
            "utf-8", errors="replace"
        )


def support_notice(
    from_address: str, support_address: str, clock: Clock
) -> Callable[[Transaction, EndpointRecord], None]:
    """What the worker does when it disables an endpoint: an email to customer service,
    queued in the transaction that disabled it (a fixed English text, not a template)."""
    name, sender = split_address(from_address)

    def notice(tx: Transaction, endpoint: EndpointRecord) -> None:
        now = clock()
        subject = f"Webhook endpoint {endpoint.id} disabled"
        text = (
            f"mailflow stopped delivering webhooks to endpoint {endpoint.id}:\n"
            f"  {endpoint.url}\n\n"
            f"Why: {endpoint.disabled_reason}\n\n"
            "Its queued events wait. Once the marketplace's receiver works again, enable the "
            "endpoint in the admin console (Webhooks) and replay what it missed.\n"
        )
        body_html = "<p>" + html.escape(text).replace("\n", "<br>\n") + "</p>"
        message_id = new_message_id(sender)
        message = compose(
            sender=address(name, sender),
            recipient=support_address,
            subject=subject,
            text=text,
            html=body_html,
            message_id=message_id,
            date=now,
            template="support_webhook_disabled",
        )
        outbox.add(
            tx,
            template="support_webhook_disabled",
            locale="en",
            sender=sender,
            recipient=support_address,
            subject=subject,
            message_id=message_id,
            body=message,
            sale_id=None,
            at=now,
        )

    return notice
