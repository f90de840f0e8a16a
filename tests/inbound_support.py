"""Helpers of the inbound mail tests: the inbound server on loopback, DSNs to send it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import make_msgid
from typing import Any

from mailflow.bootstrap import System
from mailflow.inbound.processor import Processor
from mailflow.inbound.server import InboundServer, Limits
from mailflow.store import spool
from mailflow.store.database import Database
from tests.support import free_port

_RUNNING: dict[int, Database] = {}


@contextmanager
def inbound_server(
    system: System, *, processing: bool = True, **limits: Any
) -> Iterator[tuple[InboundServer, int]]:
    """The inbound SMTP server of ``system`` on 127.0.0.1 and its processor (their own loop,
    in a thread); without ``processing``, what it accepts stays in the spool."""
    port = free_port()
    options = {"timeout_seconds": 5.0, **limits}
    server = InboundServer(system.services, "127.0.0.1", port, Limits(**options))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    stop = asyncio.Event()
    processor = (
        asyncio.run_coroutine_threadsafe(Processor(system.services, server.intake).run(stop), loop)
        if processing
        else None
    )
    _RUNNING[port] = system.db
    try:
        yield server, port
    finally:
        _RUNNING.pop(port, None)
        loop.call_soon_threadsafe(stop.set)
        if processor is not None:
            processor.result(10)
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def handled(port: int, timeout: float = 10.0) -> None:
    """Wait until the processor beside the inbound server on ``port`` has handled every
    message the server accepted (the spool is empty)."""
    wait_for_empty_spool(_RUNNING[port], timeout)


def wait_for_empty_spool(db: Database, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with db.read() as session:
            waiting = spool.count(session)
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{waiting} received messages still wait for their handlers")
        time.sleep(0.01)


def dsn(
    to: str,
    recipient: str,
    *,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown",
    original_message_id: str = "<original@mailflow.test>",
) -> bytes:
    """An RFC 3464 report as Postfix writes one, to ``to`` (the VERP address) about
    ``recipient``."""
    boundary = "dsn-boundary-1"
    diagnostic = diagnostic.format(recipient=recipient)
    return (
        f"From: MAILER-DAEMON@relay.example (Mail Delivery System)\r\n"
        f"To: {to}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='relay.example')}\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        f"\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n"
        f"\r\n"
        f"This is the mail system at host relay.example.\r\n"
        f"I'm sorry to have to inform you that your message could not\r\n"
        f"be delivered to one or more recipients.\r\n"
        f"\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: message/delivery-status\r\n"
        f"\r\n"
        f"Reporting-MTA: dns; relay.example\r\n"
        f"Arrival-Date: Fri, 27 Nov 2026 09:00:00 +0100 (CET)\r\n"
        f"\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Remote-MTA: dns; mx.shop.example\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n"
        f"\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: text/rfc822-headers\r\n"
        f"\r\n"
        f"Message-ID: {original_message_id}\r\n"
        f"Subject: Nouvelle vente\r\n"
        f"\r\n"
        f"--{boundary}--\r\n"
    ).encode()
