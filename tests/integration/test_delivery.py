"""Delivery over a real SMTP relay: retries, dead letters, headers, pooling, leases, wake-ups.

Everything here is real: the outbox rows are written by the API, the worker talks SMTP to an
aiosmtpd relay on loopback, and the relay's script makes it answer 451, 550, drop the
connection or hang. The worker uses the test's movable clock, so backoff is checked by moving
the clock, not by waiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.bootstrap import System
from mailflow.domain.sales import Action, Actor, Channel, Reason
from mailflow.mail.delivery import DeliveryWorker
from mailflow.schemas import OrderIn, SellerIn
from mailflow.services import console, orders, sales, sellers
from mailflow.services.errors import Conflict
from mailflow.store.database import OUTBOX_CHANNEL
from mailflow.store.models import OutboxMessage
from mailflow.store.outbox import Result
from tests import factories
from tests.support import (
    LINK,
    MovableClock,
    RelayHandler,
    deliver,
    free_port,
    html_of,
    links_in,
    smtp_relay,
    text_of,
    wait_for,
)

pytestmark = pytest.mark.postgres

RETRY_BASE = 30.0


# -- helpers --------------------------------------------------------------------------------


def _rows(system: System) -> list[OutboxMessage]:
    with system.db.read() as session:
        return list(session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


def _row(system: System) -> OutboxMessage:
    [row] = _rows(system)
    return row


def _utc(value: datetime) -> datetime:
    """Times come back naive (UTC) from SQLite and aware from PostgreSQL: compare as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _one_order(api: TestClient) -> dict[str, Any]:
    seller = factories.seller(api)
    return factories.order(api, seller["id"])


def _message_ids(handler: RelayHandler) -> list[str]:
    return [m["Message-ID"] for m in handler.messages()]


def _delivered_once_as_queued(system: System, handler: RelayHandler) -> None:
    row = _row(system)
    assert row.status == "sent"
    assert row.sent_at is not None
    assert row.last_error is None
    assert _message_ids(handler) == [row.message_id]
    assert handler.received[0].raw == row.body


class CountingRelay(RelayHandler):
    """The test relay, also counting the SMTP sessions (one EHLO per connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.connections = 0
        self.peers: set[tuple[str, int]] = set()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.connections += 1
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.peers.add(tuple(session.peer))
        return await super().handle_DATA(server, session, envelope)


def counting_relay() -> AbstractContextManager[tuple[CountingRelay, int]]:
    return smtp_relay(CountingRelay())


@contextmanager
def running_worker(system: System, **overrides: Any) -> Iterator[DeliveryWorker]:
    """A delivery worker running in its own thread and event loop, as in ``mailflow serve``."""
    worker = system.delivery_worker(**overrides)
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        state["loop"] = asyncio.get_running_loop()
        state["stop"] = stop = asyncio.Event()
        ready.set()
        await worker.run(stop)

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by the test below
            state["error"] = exc
            ready.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield worker
    finally:
        if "loop" in state:
            state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)
        assert not thread.is_alive(), "the worker did not stop"
        assert "error" not in state, state.get("error")


# -- temporary and permanent failures ---------------------------------------------------------


class TestTemporaryFailures:
    def test_451_backs_off_then_delivers_once_with_the_same_message_id(
        self,
        api: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
        clock: MovableClock,
    ) -> None:
        handler, _ = relay
        failures = 3
        handler.script = [f"451 4.3.0 try again later ({n})" for n in range(failures)]
        _one_order(api)
        queued = _row(system)
        assert queued.status == "queued"
        assert queued.attempts == 0

        for attempt in range(1, failures + 1):
            assert deliver(system) == 0
            row = _row(system)
            assert row.status == "queued"
            assert row.attempts == attempt
            assert row.last_error is not None and "451" in row.last_error
            assert f"try again later ({attempt - 1})" in row.last_error
            assert row.lease_until is None
            delay = timedelta(seconds=RETRY_BASE * 2 ** (attempt - 1))
            assert _utc(row.next_attempt_at) == clock() + delay
            assert row.message_id == queued.message_id
            assert handler.attempts == attempt

            # Not retried before it is due, whatever the number of worker runs.
            clock.now = clock() + delay - timedelta(seconds=1)
            assert deliver(system) == 0
            assert handler.attempts == attempt
            clock.advance(seconds=1)

        assert deliver(system) == 1
        assert handler.attempts == failures + 1
        _delivered_once_as_queued(system, handler)
        assert _row(system).attempts == failures + 1

        # Delivered means done: later runs send nothing again.
        clock.advance(days=1)
        assert deliver(system) == 0
        assert handler.attempts == failures + 1

    def test_connection_dropped_after_data_is_retried_and_delivered(
        self,
        api: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
        clock: MovableClock,
    ) -> None:
        handler, _ = relay
        handler.script = ["drop"]
        _one_order(api)
        queued = _row(system)

        assert deliver(system) == 0
        row = _row(system)
        assert row.status == "queued"
        assert row.attempts == 1
        assert row.last_error
        assert _utc(row.next_attempt_at) == clock() + timedelta(seconds=RETRY_BASE)
        assert handler.received == []

        clock.advance(seconds=RETRY_BASE)
        assert deliver(system) == 1
        _delivered_once_as_queued(system, handler)
        assert _row(system).message_id == queued.message_id

    def test_drop_in_the_middle_of_a_batch_loses_nothing(
        self,
        api: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
        clock: MovableClock,
    ) -> None:
        handler, _ = relay
        handler.script = ["250 OK", "drop", "451 busy", "250 OK", "drop"]
        for _ in range(6):
            _one_order(api)
        queued = {r.id: r.message_id for r in _rows(system)}

        deliver(system, concurrency=1)
        for _ in range(5):
            clock.advance(hours=1)
            deliver(system, concurrency=1)

        rows = _rows(system)
        assert {r.status for r in rows} == {"sent"}
        assert {r.id: r.message_id for r in rows} == queued
        assert sorted(_message_ids(handler)) == sorted(queued.values())

    def test_relay_down_is_retried_then_delivered(
        self,
        api: TestClient,
        db_url: str,
        make_system: Callable[..., System],
        relay: tuple[RelayHandler, int],
        clock: MovableClock,
    ) -> None:
        handler, relay_port = relay
        down = make_system(db_url, smtp={"port": free_port()})
        _one_order(api)
        queued = _row(down)

        for attempt in (1, 2, 3):
            assert deliver(down) == 0
            row = _row(down)
            assert row.status == "queued"
            assert row.attempts == attempt
            assert row.last_error
            assert "refused" in row.last_error.lower() or "connect" in row.last_error.lower()
            delay = timedelta(seconds=RETRY_BASE * 2 ** (attempt - 1))
            assert _utc(row.next_attempt_at) == clock() + delay
            clock.advance(seconds=delay.total_seconds())
        assert handler.attempts == 0

        # The relay is back (the normal system points at it): the same row goes out.
        up = make_system(db_url, smtp={"port": relay_port})
        assert deliver(up) == 1
        _delivered_once_as_queued(up, handler)
        assert _row(up).message_id == queued.message_id
        assert _row(up).attempts == 4

    @pytest.mark.parametrize("give_up_hours", [96.0, 1.5])
    def test_relay_down_gives_up_after_give_up_after_hours(
        self,
        api: TestClient,
        db_url: str,
        make_system: Callable[..., System],
        relay: tuple[RelayHandler, int],
        clock: MovableClock,
        give_up_hours: float,
    ) -> None:
        down = make_system(db_url, smtp={"port": free_port(), "give_up_after_hours": give_up_hours})
        _one_order(api)
        created = _utc(_row(down).created_at)
        give_up_at = created + timedelta(hours=give_up_hours)

        runs = 0
        while True:
            deliver(down)
            runs += 1
            row = _row(down)
            assert row.attempts == runs
            if row.status == "dead":
                break
            assert row.status == "queued"
            assert clock() < give_up_at, "still retried after give_up_after_hours"
            next_at = _utc(row.next_attempt_at)
            assert next_at <= give_up_at
            assert next_at > clock()
            clock.now = next_at
            assert runs < 100

        assert clock() >= give_up_at
        assert row.last_error
        said = {96.0: "gave up after 4 d: ", 1.5: "gave up after 1 h 30 min: "}[give_up_hours]
        assert row.last_error.startswith(said)
        assert row.sent_at is None
        # The schedule doubled from retry_base_seconds, then waited for the deadline.
        expected = 1
        while RETRY_BASE * (2**expected - 1) < give_up_hours * 3600:
            expected += 1
        assert runs == expected + 1

        # Dead is final: neither time nor the relay coming back sends it.
        clock.advance(days=30)
        assert deliver(make_system(db_url)) == 0
        assert _row(down).status == "dead"
        assert relay[0].attempts == 0


class TestPermanentFailures:
    def test_550_is_dead_at_once_and_never_retried(
        self,
        api: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
        clock: MovableClock,
    ) -> None:
        handler, _ = relay
        handler.script = ["550 5.1.1 no such user here"]
        _one_order(api)

        assert deliver(system) == 0
        row = _row(system)
        assert row.status == "dead"
        assert row.attempts == 1
        assert row.last_error is not None
        assert "550" in row.last_error and "no such user here" in row.last_error
        assert row.sent_at is None
        assert handler.attempts == 1

        for _ in range(3):
            clock.advance(days=5)
            assert deliver(system) == 0
        assert handler.attempts == 1
        assert handler.received == []
        assert _row(system).status == "dead"

    def test_a_dead_message_does_not_hold_up_the_others(
        self,
        api: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
    ) -> None:
        handler, _ = relay
        handler.script = ["250 OK", "550 5.7.1 rejected", "250 OK"]
        for _ in range(3):
            _one_order(api)
        assert deliver(system, concurrency=1) == 2
        statuses = [r.status for r in _rows(system)]
        assert sorted(statuses) == ["dead", "sent", "sent"]
        assert len(handler.received) == 2


# -- the message itself -----------------------------------------------------------------------


class TestHeaders:
    def test_delivered_message_carries_the_spec_headers_and_both_parts(
        self,
        api: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
        clock: MovableClock,
    ) -> None:
        handler, _ = relay
        seller = factories.seller(api, name="Librairie Éole", locale="fr")
        factories.order(api, seller["id"])
        row = _row(system)
        assert deliver(system) == 1
        [received] = handler.received

        # The envelope.
        assert received.mail_from == "no-reply@marketplace.example"
        assert received.rcpt_tos == [seller["email"]]

        msg = message_from_bytes(received.raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        assert msg.defects == []
        assert msg["Message-ID"] == row.message_id
        assert parseaddr(row.message_id)[1]
        assert parsedate_to_datetime(msg["Date"]) == clock()
        assert msg["From"].addresses[0].addr_spec == "no-reply@marketplace.example"
        assert msg["From"].addresses[0].display_name == "Marketplace"
        assert msg["To"].addresses[0].addr_spec == seller["email"]
        assert msg["To"].addresses[0].display_name == "Librairie Éole"
        assert msg["Subject"] == row.subject
        assert msg["Subject"]
        assert msg["Auto-Submitted"] == "auto-generated"
        assert msg["X-Mailflow-Template"] == "seller_new_sale"
        for name in ("Message-ID", "Date", "From", "To", "Subject", "Auto-Submitted"):
            assert len(msg.get_all(name)) == 1, name

        assert msg.get_content_type() == "multipart/alternative"
        parts = list(msg.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        for part in parts:
            assert part.get_content_charset() == "utf-8"
            assert part.defects == []

        text, html = text_of(msg), html_of(msg)
        links = links_in(msg)
        assert len(links) == 3
        assert all(link.startswith("http://mailflow.test/s/") for link in links)
        assert LINK.findall(html), "no action link in the HTML part"
        for link in links:
            assert link in html
        assert "Librairie" in text

        # The parsed message survives a round trip through the standard generator.
        again = message_from_bytes(msg.as_bytes(), policy=policy.default)
        assert again["Message-ID"] == row.message_id


# -- pooled connections -----------------------------------------------------------------------


class TestPooling:
    def test_50_messages_over_4_connections(
        self,
        api: TestClient,
        db_url: str,
        make_system: Callable[..., System],
    ) -> None:
        for _ in range(50):
            _one_order(api)
        queued = {r.message_id for r in _rows(make_system(db_url))}
        assert len(queued) == 50

        with counting_relay() as (handler, port):
            pooled = make_system(db_url, smtp={"port": port, "concurrency": 4})
            assert deliver(pooled) == 50
            assert sorted(_message_ids(handler)) == sorted(queued)
            assert handler.attempts == 50
            assert 1 <= handler.connections <= 4
            assert len(handler.peers) == handler.connections
        assert {r.status for r in _rows(pooled)} == {"sent"}

    def test_a_temporary_failure_keeps_the_connection(
        self,
        api: TestClient,
        db_url: str,
        make_system: Callable[..., System],
        clock: MovableClock,
    ) -> None:
        for _ in range(3):
            _one_order(api)
        with counting_relay() as (handler, port):
            handler.script = ["451 later", "250 OK", "250 OK"]
            pooled = make_system(db_url, smtp={"port": port, "concurrency": 1})
            assert deliver(pooled) == 2
            clock.advance(seconds=RETRY_BASE)
            assert deliver(pooled) == 1
            # One connection per worker run: the 451 was answered with RSET, not a reconnect.
            assert handler.connections == 2
        assert {r.status for r in _rows(pooled)} == {"sent"}


# -- leases -----------------------------------------------------------------------------------


class TestLease:
    def test_rows_of_a_dead_worker_are_claimed_again_only_after_the_lease(
        self,
        api: TestClient,
        db_url: str,
        make_system: Callable[..., System],
        relay: tuple[RelayHandler, int],
        clock: MovableClock,
    ) -> None:
        handler, _ = relay
        lease = 120.0
        system = make_system(db_url, smtp={"lease_seconds": lease})
        for _ in range(3):
            _one_order(api)
        queued = {r.id: r.message_id for r in _rows(system)}
        store = system.outbox_store
        start = clock()

        # A worker claims everything, then dies without a result.
        claimed = store.claim(10, start)
        assert sorted(c.id for c in claimed) == sorted(queued)
        assert all(c.attempts == 1 for c in claimed)
        for row in _rows(system):
            assert row.status == "queued"
            assert _utc(row.lease_until) == start + timedelta(seconds=lease)

        # Nobody else gets them while the lease runs.
        assert store.claim(10, start) == []
        assert store.claim(10, start + timedelta(seconds=lease / 2)) == []
        assert store.claim(10, start + timedelta(seconds=lease - 0.001)) == []

        # Once it has run out they are claimed again, once.
        later = start + timedelta(seconds=lease + 1)
        again = store.claim(10, later)
        assert sorted(c.id for c in again) == sorted(queued)
        assert all(c.attempts == 2 for c in again)
        assert store.claim(10, later) == []

        # And after that second lease runs out, a real worker delivers them, same Message-IDs.
        clock.now = later + timedelta(seconds=lease + 1)
        assert deliver(system) == 3
        assert sorted(_message_ids(handler)) == sorted(queued.values())
        assert {r.status for r in _rows(system)} == {"sent"}

    def test_a_late_result_from_an_expired_lease_does_not_undo_a_delivery(
        self,
        api: TestClient,
        db_url: str,
        make_system: Callable[..., System],
        relay: tuple[RelayHandler, int],
        clock: MovableClock,
    ) -> None:
        """Worker A's send outlives its lease; B takes the row over and delivers it.

        A's late failure must not put the delivered row back in the queue (it would be sent
        again): a result only counts for the claim it belongs to.
        """
        handler, _ = relay
        lease = 120.0
        system = make_system(db_url, smtp={"lease_seconds": lease, "timeout_seconds": 1})
        _one_order(api)
        handler.script = ["hang"]
        with running_worker(system, poll_seconds=30, concurrency=1):
            wait_for(lambda: handler.attempts == 1, timeout=10)  # A is stuck in DATA
            clock.advance(seconds=lease + 1)
            assert deliver(system, concurrency=1) == 1  # B: the lease ran out, B delivers
            assert _row(system).status == "sent"
        # A has now timed out and reported its (stale) failure.
        row = _row(system)
        assert row.status == "sent", f"delivered row put back as {row.status}: {row.last_error}"
        clock.advance(hours=1)
        assert deliver(system) == 0
        assert len(handler.received) == 1

    def test_two_workers_claim_disjoint_rows(
        self, api: TestClient, system: System, clock: MovableClock
    ) -> None:
        for _ in range(6):
            _one_order(api)
        first = system.outbox_store.claim(4, clock())
        second = system.outbox_store.claim(4, clock())
        assert len(first) == 4
        assert len(second) == 2
        assert not {c.id for c in first} & {c.id for c in second}

    def test_a_result_clears_the_lease(
        self,
        api: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
        clock: MovableClock,
    ) -> None:
        relay[0].script = ["451 later"]
        _one_order(api)
        deliver(system)
        row = _row(system)
        assert row.lease_until is None
        # Due again after the backoff, not after the (longer) lease.
        clock.advance(seconds=RETRY_BASE)
        assert [c.id for c in system.outbox_store.claim(10, clock())] == [row.id]


# -- waking up ----------------------------------------------------------------------------------


class TestWakeUp:
    def test_a_commit_that_queues_mail_wakes_the_sleeping_worker(
        self,
        api: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
    ) -> None:
        handler, _ = relay
        with running_worker(system, poll_seconds=30) as worker:
            # A first order proves the worker is up and past its start-up claim.
            _one_order(api)
            wait_for(lambda: len(handler.received) == 1, timeout=10)
            wait_for(lambda: worker.sent_count == 1, timeout=10)
            time.sleep(0.1)  # let it settle into its 30-second sleep

            seller = factories.seller(api)
            committed = time.monotonic()
            factories.order(api, seller["id"])
            wait_for(lambda: len(handler.received) == 2, timeout=1.0)
            assert time.monotonic() - committed < 1.0

            wait_for(lambda: worker.sent_count == 2, timeout=5)
        assert {r.status for r in _rows(system)} == {"sent"}
        assert sorted(_message_ids(handler)) == sorted(r.message_id for r in _rows(system))


@pytest.mark.postgres
class TestNotifyOnPostgres:
    """Workers in other processes LISTEN; the outbox's trigger NOTIFYs on commit (0007)."""

    def test_queued_mail_notifies_on_commit_only_and_delivery_results_do_not(
        self, pg_only_url: str, make_system: Callable[..., System], clock: MovableClock
    ) -> None:
        system = make_system(pg_only_url)
        ctx = system.services
        dsn = system.db.listen_dsn()
        assert dsn is not None
        with psycopg.connect(dsn, autocommit=True) as listener:
            listener.execute(f"LISTEN {OUTBOX_CHANNEL}")

            def heard() -> int:
                return len(list(listener.notifies(timeout=0.3)))

            seller = sellers.create_seller(
                ctx, SellerIn(name="Librairie", email="s@shop.example", locale="fr")
            )
            assert heard() == 0  # no mail, no notification

            def order(external_id: str, *skus: str) -> OrderIn:
                return OrderIn.model_validate(
                    {
                        "external_id": external_id,
                        "buyer": {"email": "b@buyers.example", "name": "B", "locale": "fr"},
                        "items": [
                            {
                                "seller_id": seller["id"],
                                "sku": sku,
                                "title": sku,
                                "quantity": 1,
                                "unit_price": "12.50",
                            }
                            for sku in skus
                        ],
                    }
                )

            placed = orders.place_order(ctx, order("A", "X"), None)
            assert heard() == 1  # one per transaction, however many rows it queued

            sale_id = placed.body["sales"][0]["id"]
            sales.transition(
                ctx,
                sale_id,
                Action.REFUSE,
                actor=Actor.SELLER,
                channel=Channel.EMAIL_LINK,
                reason=Reason.OUT_OF_STOCK,
            )
            assert heard() == 1  # the buyer's email; listing X is now off sale

            # Y's seller email is queued, then X is refused: the transaction rolls back.
            with pytest.raises(Conflict):
                orders.place_order(ctx, order("B", "Y", "X"), None)
            assert heard() == 0

            claimed = system.outbox_store.claim(10, clock())
            assert len(claimed) == 2
            assert heard() == 0  # a claim sets no status
            system.outbox_store.record(
                [Result(c.id, c.lease_until, "dead", "550 no") for c in claimed], clock()
            )
            assert heard() == 0  # results are not mail to send
            console.retry_message(ctx, claimed[0].id)
            assert heard() == 1  # a dead message put back in the queue
