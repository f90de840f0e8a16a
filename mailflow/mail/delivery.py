"""The delivery worker: claims outbox rows and sends them over pooled SMTP connections.

Each of ``smtp.concurrency`` sender tasks keeps one connection open and reuses it. Temporary
failures (4xx replies, dropped or refused connections, timeouts) are retried with exponential
backoff (``retry_base_seconds`` doubling) until ``give_up_after_hours`` after the message was
queued; permanent ones (5xx) go dead at once. Rows are claimed in whole batches and results
written back in batches (a transaction per ``FLUSH_LINGER_SECONDS`` or per claim batch of
results, not per message). Store calls run in order on one thread of the worker's own: SQLite
has one writer anyway, and a claim racing a result write from another thread only sleeps in
the busy handler. The worker sleeps until woken by a commit that queued mail, or until the
next retry is due.

The claim loop, each sender and the result flusher run under the system's supervisor
(``mailflow.supervisor``): one that fails (the database dropped its connection) is logged and
started again after a backoff while the others go on. Results whose write failed are kept and
written again by the restarted flusher, so a message the relay accepted is not sent again
just because the database blinked; a row claimed again while its result waits to be written
takes that result over instead of being sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import aiosmtplib

from mailflow.clock import Clock
from mailflow.mail.formatting import duration
from mailflow.store.outbox import DEAD, QUEUED, SENT, Claimed, OutboxStore, Result
from mailflow.supervisor import Supervisor, beat
from mailflow.telemetry import Telemetry
from mailflow.wakeable import Wakeable

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 5.0
FLUSH_LINGER_SECONDS = 0.02
WAKE_LINGER_SECONDS = 0.05
"""After a wake-up, wait this long before claiming: commits come in bursts, and on PostgreSQL
every worker of every process hears every NOTIFY; one claim per burst, not one per commit."""
INFLIGHT_POLL_SECONDS = 0.5
"""While sending, claim again at least this often, wake-up or not (rows whose lease ran out)."""
NEXT_DUE_MAX_AGE_SECONDS = 1.0
"""``next_due`` (a read of up to 1000 rows) is re-read at most this often while idle."""
CLAIM_STALE_AFTER_SECONDS = 60.0
"""The claim loop is not ready (``/readyz``) after this long without a successful claim
(at least three idle polls)."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    tls: Literal["starttls", "implicit", "none"] = "none"
    """``starttls``: plain, then STARTTLS (refused if the relay does not offer it);
    ``implicit``: TLS from the first byte (port 465); ``none``: plain text."""
    ca_file: str = ""
    """PEM certificates to verify the relay's against; empty: the system's."""
    username: str = ""
    password: str = ""
    timeout: float = 30.0


class DeliveryWorker(Wakeable):
    def __init__(
        self,
        store: OutboxStore,
        target: SmtpTarget,
        clock: Clock,
        *,
        concurrency: int = 8,
        retry_base_seconds: float = 30.0,
        give_up_after_hours: float = 96.0,
        poll_seconds: float = IDLE_POLL_SECONDS,
        supervisor: Supervisor | None = None,
        telemetry: Telemetry | None = None,
        name: str = "delivery",
        return_path: Callable[[int], str] | None = None,
    ) -> None:
        """``return_path``: the envelope sender of a row (its VERP ``bounce+`` address when
        inbound mail is on); None: the row's own sender."""
        self.store = store
        self.target = target
        self.clock = clock
        self.concurrency = concurrency
        self.retry_base = retry_base_seconds
        self.give_up = timedelta(hours=give_up_after_hours)
        self.poll_seconds = poll_seconds
        self.return_path = return_path
        self._queue: asyncio.Queue[Claimed | None] | None = None
        self._results: list[Result] = []
        self._results_ready: asyncio.Event | None = None
        self._inflight: set[int] = set()
        self._db: ThreadPoolExecutor | None = None
        self._next_due: datetime | None = None
        self._next_due_read = float("-inf")
        self._stopping = False
        self._done: asyncio.Event | None = None
        self.supervisor = supervisor or Supervisor(telemetry)
        self.telemetry = telemetry
        self.name = name
        self.sent_count = 0

    # -- running --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None, *, until_idle: bool = False) -> None:
        """Deliver until ``stop`` is set (or, with ``until_idle``, until nothing is due)."""
        self._arm()
        self._results_ready = asyncio.Event()
        self._stopping = False
        self._queue = asyncio.Queue(maxsize=self.concurrency * 2)
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-store")
        stop = stop or asyncio.Event()
        # Senders and flusher are restarted until the claim loop has ended.
        done = self._done = asyncio.Event()
        start, name = self.supervisor.start, self.name
        senders = [
            start(f"{name}.sender.{n}", self._sender, done) for n in range(1, self.concurrency + 1)
        ]
        flusher = start(f"{name}.flusher", self._flusher, done)
        stale = max(CLAIM_STALE_AFTER_SECONDS, 3 * self.poll_seconds)
        claim = start(
            f"{name}.claim", lambda: self._claim_loop(stop, until_idle), stop, stale_after=stale
        )
        try:
            await claim
        finally:
            # Give back what no sender has started, let the senders finish what they hold.
            done.set()
            leftover = self._drain_queue()
            for item in leftover:
                self._inflight.discard(item.id)
            for _ in senders:
                await self._queue.put(None)
            await asyncio.gather(*senders, return_exceptions=True)
            self._stopping = True
            self._results_ready.set()
            await flusher
            try:
                await self._flush()  # what a flusher waiting for its restart still held
                await self._store(self.store.release, leftover)
            except Exception:
                # The database is away: the leases run out and the rows are claimed again.
                log.exception("outbox results not written at stop")
            self._db.shutdown(wait=False)
            self._loop = None

    async def _claim_loop(self, stop: asyncio.Event, until_idle: bool) -> None:
        assert self._queue is not None and self._wake is not None
        batch = self.concurrency * 2
        while not stop.is_set():
            self._wake.clear()
            # Whole batches, not the room left: the queue's bound is the back-pressure, and a
            # row sent but not yet recorded keeps its lease, so it need not hold room back.
            claimed = await self._store(self.store.claim, batch, self.clock())
            beat()
            for item in self._taken_over(claimed):
                self._inflight.add(item.id)
                await self._queue.put(item)
            if len(claimed) == batch:
                continue  # a full batch: more may be due at once
            # Fewer than asked: nothing else is due now. Another claim right away would come
            # back empty (and on PostgreSQL every worker of every process tries): sleep until
            # a commit wakes us, a result is recorded, or the next retry is due.
            if until_idle and not self._inflight:
                await self._flush()
                if not self._inflight and await self._nothing_due():
                    stop.set()
                    return
            await self._sleep(stop)

    def _taken_over(self, claimed: list[Claimed]) -> list[Claimed]:
        """The claimed rows to send: a row claimed again (its lease ran out) while its result
        still waits to be written is not sent again; its result now carries the new lease."""
        if not self._results:
            return claimed
        waiting = {result.id: n for n, result in enumerate(self._results)}
        to_send = []
        for item in claimed:
            n = waiting.get(item.id)
            if n is None:
                to_send.append(item)
            else:
                result = self._results[n]
                self._results[n] = dataclasses.replace(result, lease_until=item.lease_until)
        return to_send

    async def _nothing_due(self) -> bool:
        next_due = await self._store(self.store.next_due)
        return next_due is None or next_due > self.clock()

    async def _sleep(self, stop: asyncio.Event) -> None:
        assert self._wake is not None
        timeout = self.poll_seconds
        if self._inflight:
            timeout = min(timeout, INFLIGHT_POLL_SECONDS)
        else:
            assert self._loop is not None
            next_due = self._next_due
            if self._loop.time() - self._next_due_read >= NEXT_DUE_MAX_AGE_SECONDS or (
                next_due is not None and next_due <= self.clock()
            ):
                next_due = self._next_due = await self._store(self.store.next_due)
                self._next_due_read = self._loop.time()
            if next_due is not None:
                # Wake for the next retry (or expired lease) rather than a whole poll later.
                timeout = max(0.01, min(timeout, (next_due - self.clock()).total_seconds()))
        waits = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        if self._wake.is_set() and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WAKE_LINGER_SECONDS)

    async def _store(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store call on the worker's store thread (one at a time, in order)."""
        assert self._loop is not None and self._db is not None
        return await self._loop.run_in_executor(self._db, fn, *args)

    def _drain_queue(self) -> list[Claimed]:
        assert self._queue is not None
        items = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                items.append(item)
        return items

    # -- sending --------------------------------------------------------------------------

    async def _connect(self) -> aiosmtplib.SMTP:
        t = self.target
        smtp = aiosmtplib.SMTP(
            hostname=t.host,
            port=t.port,
            timeout=t.timeout,
            start_tls=t.tls == "starttls",
            use_tls=t.tls == "implicit",
            cert_bundle=t.ca_file or None,
        )
        await smtp.connect()
        if t.username:
            await smtp.login(t.username, t.password)
        return smtp

    async def _sender(self) -> None:
        assert self._queue is not None
        smtp: aiosmtplib.SMTP | None = None
        try:
            while (item := await self._queue.get()) is not None:
                if item.lease_until <= self.clock():
                    # Waited past its lease: another worker may hold it now; drop it here.
                    self._inflight.discard(item.id)
                    continue
                try:
                    result, keep = await self._send(smtp, item)
                except BaseException:
                    self._inflight.discard(item.id)  # its lease runs out; claimed again
                    raise
                smtp = keep
                self._report(result, item)
                beat()
        finally:
            if smtp is not None:
                with contextlib.suppress(Exception):
                    await smtp.quit()

    async def _send(
        self, smtp: aiosmtplib.SMTP | None, item: Claimed
    ) -> tuple[Result, aiosmtplib.SMTP | None]:
        if smtp is None or not smtp.is_connected:
            try:
                smtp = await self._connect()
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                # Greeting, STARTTLS or login failing is the relay's trouble, not the
                # message's: always temporary, whatever the reply code.
                error = f"connecting to {self.target.host}:{self.target.port}: {exc}"
                return self._failure(item, error, permanent=False), None
        started = time.perf_counter()
        try:
            sender = item.sender if self.return_path is None else self.return_path(item.id)
            await smtp.sendmail(sender, [item.recipient], item.body)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            error = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            smtp = await self._reset(smtp)
            return self._failure(item, error, permanent=all(500 <= c < 600 for c in codes)), smtp
        except aiosmtplib.SMTPResponseException as exc:
            smtp = await self._reset(smtp)
            error = f"{exc.code} {exc.message}"
            return self._failure(item, error, permanent=500 <= exc.code < 600), smtp
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            await self._close(smtp)
            error = f"{type(exc).__name__}: {exc}"
            return self._failure(item, error, permanent=False), None
        finally:
            if self.telemetry is not None:
                self.telemetry.smtp_send_seconds.observe(time.perf_counter() - started)
        return Result(item.id, item.lease_until, SENT), smtp

    async def _reset(self, smtp: aiosmtplib.SMTP | None) -> aiosmtplib.SMTP | None:
        if smtp is None or not smtp.is_connected:
            return None
        try:
            await smtp.rset()
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            await self._close(smtp)
            return None
        return smtp

    async def _close(self, smtp: aiosmtplib.SMTP | None) -> None:
        if smtp is not None:
            with contextlib.suppress(Exception):
                smtp.close()

    def _failure(self, item: Claimed, error: str, *, permanent: bool) -> Result:
        now = self.clock()
        if permanent:
            log.warning("outbox %s dead: %s", item.id, error)
            return Result(item.id, item.lease_until, DEAD, error)
        if now - item.created_at >= self.give_up:
            gave_up = f"gave up after {duration(self.give_up)}"
            log.warning("outbox %s dead, %s: %s", item.id, gave_up, error)
            return Result(item.id, item.lease_until, DEAD, f"{gave_up}: {error}")
        delay = timedelta(seconds=self.retry_base * 2 ** max(item.attempts - 1, 0))
        next_at = min(now + delay, item.created_at + self.give_up)
        log.info("outbox %s retry at %s: %s", item.id, next_at.isoformat(), error)
        return Result(item.id, item.lease_until, QUEUED, error, next_at)

    # -- results --------------------------------------------------------------------------

    def _report(self, result: Result, item: Claimed) -> None:
        assert self._results_ready is not None
        self._results.append(result)
        self._results_ready.set()
        if self.telemetry is not None:
            outcome = {SENT: "sent", DEAD: "dead"}.get(result.status, "retried")
            self.telemetry.emails_total.labels(template=item.template, outcome=outcome).inc()

    async def _flusher(self) -> None:
        assert self._results_ready is not None
        while not self._stopping:
            if not self._results:  # a restarted flusher first writes what is left
                await self._results_ready.wait()
            self._results_ready.clear()
            if len(self._results) < self.concurrency * 2 and not self._stopping:
                await asyncio.sleep(FLUSH_LINGER_SECONDS)  # let a batch of results gather
            await self._flush()
        await self._flush()

    async def _flush(self) -> None:
        if not self._results:
            return
        batch, self._results = self._results, []
        try:
            await self._store(self.store.record, batch, self.clock())
        except BaseException:
            # Kept for the next try (the restarted flusher's, or the stop's): the row's lease
            # makes a result that comes too late harmless, and a sent message is not resent.
            self._results[:0] = batch
            raise
        beat()
        for result in batch:
            self._inflight.discard(result.id)
            if result.status == SENT:
                self.sent_count += 1
        retry = any(result.status == QUEUED for result in batch)
        if retry:
            self._next_due_read = float("-inf")  # a retry moved the next due time
        if self._wake is not None and (retry or not self._inflight):
            # A retry may soon be due, and an empty pipeline may end a drain; a result alone
            # brings nothing new to claim (new mail wakes the claim loop itself).
            self._wake.set()
