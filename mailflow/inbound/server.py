"""The inbound SMTP server: aiosmtpd, answering only for the signed addresses mailflow made.

The conversation:
- ``RCPT TO`` an address that is not ``<kind>+<token>@<inbound.domain>`` of a known kind →
  ``550 5.1.1``; a token whose signature does not verify → ``550 5.7.1``. Refused at once, so
  mailflow never accepts what it would have to bounce (no backscatter).
- More than ``max_recipients`` recipients → ``452 4.5.3`` for the extra ones.
- A message over ``max_message_bytes`` (announced with ``SIZE`` or sent) → ``552 5.3.4``.
- Only ``CRLF.CRLF`` ends the data: aiosmtpd reads lines up to CRLF, so a bare LF before a
  dot is part of the message (no SMTP smuggling).
- ``250`` only once ``services.inbound.spool`` has committed the message (accepted means
  durable); if it cannot, ``451 4.3.0`` and the sender keeps the message and tries again.
  The handlers run right after, in ``inbound.processor``.
- At most ``max_sessions`` connections at once (one more gets ``421 4.7.0`` and is closed);
  a client silent for ``timeout_seconds`` is disconnected.
- A client that keeps making errors is slowed down, then let go, as Postfix does with its
  ``smtpd_soft_error_limit``, ``smtpd_error_sleep_time`` and ``smtpd_hard_error_limit``:
  from its ``soft_errors``-th error on, each error reply waits ``error_delay_seconds``
  (costing the server nothing but a timer), and past ``hard_errors`` it gets ``421 4.7.0``
  and is disconnected. A relay that makes a mistake now and then never notices; a client
  sending made-up recipients or garbage gets a few answers a second instead of thousands.

The database work runs in a worker thread, so a slow commit never holds the event loop the
HTTP server may share. Messages that arrive together are spooled in one transaction (group
commit).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailflow.bootstrap import System
from mailflow.inbound.addresses import Address, AddressError
from mailflow.inbound.processor import Intake
from mailflow.services import inbound
from mailflow.services.context import ServiceContext

log = logging.getLogger(__name__)

TOO_BIG = "552 5.3.4 Message too big for this system"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
TOO_MANY_SESSIONS = b"421 4.7.0 Too many connections, try again later\r\n"
TOO_MANY_ERRORS = "421 4.7.0 Too many errors, closing the connection"
NOT_KEPT = "451 4.3.0 Could not keep the message; try again later"


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_bytes: int = 10 * 1024 * 1024
    max_recipients: int = 50
    max_sessions: int = 100
    timeout_seconds: float = 60.0
    soft_errors: int = 3
    hard_errors: int = 20
    error_delay_seconds: float = 1.0
    batch: int = 32
    """Messages that arrived together are spooled in one transaction, up to this many (group
    commit); one transaction at a time, so the inbound server never takes more than one of
    the database's writer turns from the HTTP side."""


class InboundHandler:
    """aiosmtpd's hooks: the recipient check at RCPT, the keeping at DATA."""

    def __init__(self, ctx: ServiceContext, limits: Limits) -> None:
        self.ctx = ctx
        self.limits = limits
        self.intake = Intake()
        self._waiting: list[tuple[inbound.Incoming, asyncio.Future[int]]] = []
        self._keeper: asyncio.Task[None] | None = None

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        found: list[Address] = getattr(envelope, "mailflow_addresses", [])
        if len(found) >= self.limits.max_recipients:
            return TOO_MANY_RECIPIENTS
        try:
            # A signature check and a shape check: no database work at RCPT time.
            recipient = inbound.check_recipient(self.ctx, address)
        except AddressError as exc:
            return f"{exc.code} {exc}"
        found.append(recipient)
        envelope.mailflow_addresses = found  # type: ignore[attr-defined]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # pragma: no cover - decode_data is off
            raw = raw.encode("utf-8", "surrogateescape")
        recipients: list[Address] = getattr(envelope, "mailflow_addresses", [])
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        mail_from = envelope.mail_from or ""
        if mail_from == "<>":
            mail_from = ""
        incoming = inbound.Incoming(mail_from, recipients, bytes(raw), str(peer))
        kept_later: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((incoming, kept_later))
        if self._keeper is None:
            self._keeper = asyncio.create_task(self._keep_waiting())
        try:
            spool_id = await kept_later
        except Exception:
            # Not kept, so not accepted: the sender keeps the message and retries.
            return NOT_KEPT
        return f"250 2.0.0 Kept as {spool_id}"

    async def _keep_waiting(self) -> None:
        """Spool the waiting messages, a batch per transaction, until none waits."""
        try:
            while self._waiting:
                batch = self._waiting[: self.limits.batch]
                del self._waiting[: self.limits.batch]
                try:
                    kept = await asyncio.to_thread(
                        inbound.spool, self.ctx, [incoming for incoming, _ in batch]
                    )
                except Exception as exc:
                    log.exception("inbound: could not keep %s messages", len(batch))
                    for _, kept_later in batch:
                        if not kept_later.done():
                            kept_later.set_exception(exc)
                    continue
                self.intake.spooled()
                for (_, kept_later), spool_id in zip(batch, kept, strict=True):
                    if not kept_later.done():
                        kept_later.set_result(spool_id)
        finally:
            self._keeper = None


class _Sessions:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0


class InboundSMTP(SMTP):
    """aiosmtpd's SMTP with mailflow's replies for oversize mail and a cap on sessions."""

    def __init__(
        self, handler: InboundHandler, sessions: _Sessions, limits: Limits, **kwargs: Any
    ) -> None:
        super().__init__(handler, **kwargs)
        self._sessions = sessions
        self._limits = limits
        self._refused = False
        self._errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._sessions.open >= self._sessions.limit:
            self._refused = True
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(TOO_MANY_SESSIONS)
            transport.close()
            return
        self._sessions.open += 1
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._sessions.open -= 1
        super().connection_lost(error)

    def _peer(self) -> str:
        peer = self.session.peer if self.session is not None else None
        return str(peer[0]) if isinstance(peer, tuple) else str(peer)

    async def push(self, status: Any) -> None:
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else str(status)
        if text.startswith("552 "):
            # aiosmtpd's wording ("552 Error: Too much mail data") without the enhanced code.
            text = TOO_BIG
        if text[:1] in ("4", "5") and not text.startswith(("421", NOT_KEPT[:9])):
            # An error of the client's (not a refusal of the session, nor a failure of ours).
            self._errors += 1
            limits = self._limits
            if self._errors > limits.hard_errors:
                log.warning("inbound: %s let go after %s errors", self._peer(), limits.hard_errors)
                await super().push(TOO_MANY_ERRORS)
                if self.transport is not None:
                    self.transport.close()
                return
            if self._errors >= limits.soft_errors:
                await asyncio.sleep(limits.error_delay_seconds)
        await super().push(text)


class InboundServer:
    """Runs the inbound server on the current event loop, on ``host:port``."""

    def __init__(
        self,
        ctx: ServiceContext,
        host: str,
        port: int,
        limits: Limits,
        sock: socket.socket | None = None,
    ) -> None:
        """``sock``: a socket already bound to ``host:port`` (``mailflow serve`` binds its
        ports before anything else, so that a taken one stops the start at once)."""
        self.handler = InboundHandler(ctx, limits)
        self.intake = self.handler.intake
        """Woken when this server spooled messages: what its processor waits on
        (``inbound.processor``; the commands run it in a process of its own)."""
        self.limits = limits
        self.host = host
        self.port = port
        self.sock = sock
        self._sessions = _Sessions(limits.max_sessions)
        self._server: asyncio.Server | None = None

    @property
    def open_sessions(self) -> int:
        return self._sessions.open

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.sock is not None:
            self._server = await loop.create_server(self._protocol, sock=self.sock)
        else:
            self._server = await loop.create_server(self._protocol, self.host, self.port)

    def serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    def _protocol(self) -> SMTP:
        return InboundSMTP(
            self.handler,
            self._sessions,
            self.limits,
            hostname="mailflow-inbound",
            ident="mailflow",
            data_size_limit=self.limits.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            timeout=self.limits.timeout_seconds,
        )

    @classmethod
    def of(
        cls,
        system: System,
        host: str | None = None,
        port: int | None = None,
        sock: socket.socket | None = None,
    ) -> InboundServer:
        """The server ``[inbound]`` describes; ``host``/``port`` override it."""
        s = system.settings.inbound
        limits = Limits(s.max_message_bytes, s.max_recipients, s.max_sessions, s.timeout_seconds)
        return cls(system.services, host or s.host, port or s.port, limits, sock)

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Serve (once started: a taken port fails ``start``) until ``stop`` is set."""
        log.info("inbound SMTP listening on %s:%s", self.host, self.port)
        try:
            await stop.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
