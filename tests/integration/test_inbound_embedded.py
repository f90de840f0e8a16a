"""Bounces in development: the embedded inbox refuses ``smtp.embedded_bounce_pattern``
addresses as a relay would and sends a real DSN back to the VERP address, on the inbound
server, so the whole bounce flow runs on a laptop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from mailflow import runner
from mailflow.bootstrap import System
from mailflow.inbound.processor import Processor
from mailflow.inbound.server import InboundServer
from mailflow.store.models import InboundMessage, InboxMessage, OutboxMessage
from tests import factories
from tests.conftest import API_TOKEN
from tests.support import deliver, free_port, wait_for

pytestmark = pytest.mark.postgres


@contextmanager
def inbox_and_inbound(system: System) -> Iterator[None]:
    """The embedded inbox and (when enabled) the inbound server, as ``serve`` runs them."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    inbox = runner.inbox_server(system)
    inbound = InboundServer.of(system) if system.settings.inbound.enabled else None
    stop = asyncio.Event()
    asyncio.run_coroutine_threadsafe(inbox.start(), loop).result(10)
    if inbound is not None:
        asyncio.run_coroutine_threadsafe(inbound.start(), loop).result(10)
        processing = asyncio.run_coroutine_threadsafe(
            Processor(system.services, inbound.intake).run(stop), loop
        )
    try:
        yield
    finally:
        asyncio.run_coroutine_threadsafe(inbox.stop(), loop).result(10)
        if inbound is not None:
            loop.call_soon_threadsafe(stop.set)
            processing.result(10)
            asyncio.run_coroutine_threadsafe(inbound.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _embedded(make_system: Callable[..., System], db_url: str, inbound: bool) -> System:
    return make_system(
        db_url,
        smtp={"mode": "embedded", "embedded_port": free_port()},
        inbound={"enabled": inbound, "port": free_port(), "domain": "mailflow.localhost"},
    )


def _outbox(system: System) -> list[OutboxMessage]:
    with system.db.read() as session:
        return list(session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


def _client(system: System) -> object:
    from fastapi.testclient import TestClient

    from mailflow.web.app import create_app

    client = TestClient(create_app(system), base_url="http://mailflow.test")
    client.headers["Authorization"] = f"Bearer {API_TOKEN}"
    return client


def test_an_order_to_a_bounce_test_seller_bounces_back_and_support_is_told(
    db_url: str, make_system: Callable[..., System]
) -> None:
    system = _embedded(make_system, db_url, inbound=True)
    api = _client(system)
    gone = factories.seller(api, email="ancienne-adresse@bounce.example")  # type: ignore[arg-type]
    fine = factories.seller(api)  # type: ignore[arg-type]
    factories.order(api, gone["id"])  # type: ignore[arg-type]
    factories.order(api, fine["id"])  # type: ignore[arg-type]
    with inbox_and_inbound(system):
        deliver(system)

        def bounced() -> bool:
            return any(row.status == "bounced" for row in _outbox(system))

        wait_for(bounced, timeout=15)
    statuses = {(r.template, r.recipient): r.status for r in _outbox(system)}
    assert statuses[("seller_new_sale", "ancienne-adresse@bounce.example")] == "bounced"
    assert statuses[("seller_new_sale", fine["email"])] == "sent"
    assert statuses[("support_seller_unreachable", "support@marketplace.example")] in (
        "queued",
        "sent",
    )
    with system.db.read() as session:
        inbox = list(session.execute(select(InboxMessage.rcpt_to)).scalars())
        verdicts = list(session.execute(select(InboundMessage.verdict)).scalars())
    assert "ancienne-adresse@bounce.example" not in inbox  # refused: never in the inbox
    assert fine["email"] in inbox
    assert verdicts == ["bounced"]


def test_without_inbound_mail_the_address_is_refused_at_rcpt(
    db_url: str, make_system: Callable[..., System]
) -> None:
    system = _embedded(make_system, db_url, inbound=False)
    api = _client(system)
    gone = factories.seller(api, email="nobody@bounce.example")  # type: ignore[arg-type]
    factories.order(api, gone["id"])  # type: ignore[arg-type]
    with inbox_and_inbound(system):
        deliver(system)
    [row] = _outbox(system)
    assert row.status == "dead" and "550 5.1.1" in (row.last_error or "")
