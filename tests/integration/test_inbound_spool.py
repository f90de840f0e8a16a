"""The inbound spool: ``250`` means the message is committed, the handlers run after it from
the spool, a handler that fails is tried again and then recorded as failed, and several
processors share one spool without handling a message twice; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import smtplib
import threading
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.bootstrap import System
from mailflow.inbound.processor import Processor
from mailflow.inbound.server import InboundServer
from mailflow.services import inbound
from mailflow.services.context import ServiceContext
from mailflow.services.received import Kind, Received, Verdict
from mailflow.store import spool
from mailflow.store.database import Transaction
from mailflow.store.models import InboundMessage, InboundSpool, OutboxMessage
from tests.inbound_support import dsn, inbound_server, wait_for_empty_spool
from tests.integration.test_inbound import DOMAIN, sent_order
from tests.support import MovableClock, RelayHandler

pytestmark = pytest.mark.postgres


@pytest.fixture
def system(db_url: str, make_system: Callable[..., System]) -> System:
    return make_system(db_url, inbound={"enabled": True, "domain": DOMAIN})


def rows(system: System) -> list[InboundMessage]:
    with system.db.read() as session:
        return list(session.execute(select(InboundMessage).order_by(InboundMessage.id)).scalars())


def spooled(system: System) -> list[InboundSpool]:
    with system.db.read() as session:
        return list(session.execute(select(InboundSpool).order_by(InboundSpool.id)).scalars())


def order_emails(system: System) -> list[str]:
    """The statuses of the order emails."""
    with system.db.read() as session:
        return list(
            session.execute(
                select(OutboxMessage.status)
                .where(OutboxMessage.template == "seller_new_sale")
                .order_by(OutboxMessage.id)
            ).scalars()
        )


def counted(system: System, kind: str, verdict: str) -> float:
    value = system.telemetry.registry.get_sample_value(
        "mailflow_inbound_messages_total", {"kind": kind, "verdict": verdict}
    )
    return value or 0.0


def test_250_means_kept_and_the_processor_handles_it_after(
    api: TestClient, system: System, relay: tuple[RelayHandler, int]
) -> None:
    handler, _ = relay
    _, _, verp, to = sent_order(api, system, handler)
    with inbound_server(system, processing=False) as (server, port):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo("relay.example")
            client.mail("")
            client.rcpt(verp)
            code, reply = client.data(dsn(verp, to))
        assert code == 250
        # Accepted, so committed: the message is in the spool, under the id the 250 gave...
        [message] = spooled(system)
        assert reply.decode() == f"2.0.0 Kept as {message.id}"
        assert message.mail_from == "" and message.recipients == verp and message.attempts == 0
        assert b"Subject: Undelivered Mail Returned to Sender\r\n" in message.raw
        # ...and nothing was done yet: no verdict, the order email is still just sent.
        assert rows(system) == []
        assert order_emails(system) == ["sent"]
        asyncio.run(_run_until_empty(server, system, asyncio.Event()))
    [row] = rows(system)
    assert row.spool_id == message.id and row.rcpt_to == verp and row.size == len(message.raw)
    assert row.verdict == "bounced" and row.outbox_id is not None
    assert row.subject == "Undelivered Mail Returned to Sender" and row.message_id
    assert spooled(system) == []
    assert order_emails(system) == ["bounced"]
    assert counted(system, "bounce", "bounced") == 1
    assert system.telemetry.registry.get_sample_value("mailflow_inbound_spool_messages") == 0


async def _run_until_empty(server: InboundServer, system: System, stop: asyncio.Event) -> None:
    task = asyncio.create_task(Processor(system.services, server.intake).run(stop))
    try:
        await asyncio.to_thread(wait_for_empty_spool, system.db)
        await asyncio.sleep(0.1)  # its look at the spool, once empty
    finally:
        stop.set()
        await task


def _failing(ctx: ServiceContext, tx: Transaction, received: Received) -> Verdict:
    raise RuntimeError("the handler broke")


def test_a_failing_handler_is_tried_again_later_then_recorded_as_failed(
    api: TestClient,
    system: System,
    relay: tuple[RelayHandler, int],
    clock: MovableClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler, _ = relay
    _, _, verp, to = sent_order(api, system, handler)
    address = inbound.check_recipient(system.services, verp)
    incoming = inbound.Incoming("", [address], dsn(verp, to), "192.0.2.7")
    [spool_id] = inbound.spool(system.services, [incoming])
    monkeypatch.setitem(inbound.KINDS, "bounce", Kind(inbound.KINDS["bounce"].check, _failing))
    assert inbound.process(system.services).taken == 1
    [waiting] = spooled(system)
    assert waiting.attempts == 1 and "the handler broke" in waiting.last_error
    assert rows(system) == []
    # Not due again before its delay.
    assert inbound.process(system.services) == inbound.Processed(0, [])
    for delay in inbound.RETRY_AFTER:
        clock.advance(seconds=delay.total_seconds())
        last = inbound.process(system.services)
        assert last.taken == 1
    assert spooled(system) == []
    [row] = rows(system)
    [outcome] = last.outcomes
    assert (outcome.kind, outcome.verdict.verdict, outcome.row_id) == ("bounce", "failed", row.id)
    assert row.spool_id == spool_id and row.verdict == "failed" and row.rcpt_to == verp
    assert "5 tries" in row.reason and "the handler broke" in row.reason
    assert order_emails(system) == ["sent"]


def test_a_failing_message_does_not_hold_back_the_others_of_its_batch(
    api: TestClient,
    system: System,
    relay: tuple[RelayHandler, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler, _ = relay
    _, _, first, first_to = sent_order(api, system, handler)
    _, _, second, second_to = sent_order(api, system, handler)
    real = inbound.KINDS["bounce"]

    def fails_on_first(ctx: ServiceContext, tx: Transaction, received: Received) -> Verdict:
        if received.address.address == first:
            raise RuntimeError("only this one")
        return real.receive(ctx, tx, received)

    monkeypatch.setitem(inbound.KINDS, "bounce", Kind(real.check, fails_on_first))
    messages = [
        inbound.Incoming("", [inbound.check_recipient(system.services, verp)], dsn(verp, to), "")
        for verp, to in ((first, first_to), (second, second_to))
    ]
    inbound.spool(system.services, messages)
    processed = inbound.process(system.services)
    assert processed.taken == 2
    assert [o.verdict.verdict for o in processed.outcomes] == ["bounced"]
    assert [(r.rcpt_to, r.verdict) for r in rows(system)] == [(second, "bounced")]
    [left] = spooled(system)
    assert left.attempts == 1


def test_two_processors_share_the_spool_and_handle_each_message_once(
    system: System, db_url: str, make_system: Callable[..., System]
) -> None:
    """Two systems (two processes' engines) drain one spool at the same time."""
    other = make_system(db_url, inbound={"enabled": True, "domain": DOMAIN})
    book = system.services.addresses
    assert book is not None
    messages = [
        inbound.Incoming(
            "",
            [inbound.check_recipient(system.services, book.bounce_address(10_000 + n))],
            f"Subject: {n}\r\n\r\nnot a bounce\r\n".encode(),
            "",
        )
        for n in range(60)
    ]
    for start in range(0, 60, 20):
        inbound.spool(system.services, messages[start : start + 20])
    go = threading.Barrier(2)
    errors: list[BaseException] = []
    handled: list[int] = []

    def drain(ctx: ServiceContext) -> None:
        go.wait()
        try:
            while processed := inbound.process(ctx, 4):
                if not processed.taken:
                    break
                handled.extend(o.row_id for o in processed.outcomes)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(s.services,)) for s in (system, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with system.db.read() as session:
        assert spool.count(session) == 0
    every = rows(system)
    assert {r.verdict for r in every} == {"unknown"}
    # Each row handled once, by one processor or the other.
    assert sorted(handled) == sorted(r.id for r in every) and len(handled) == 60
