"""The embedded SMTP inbox: an aiosmtpd server that keeps what it receives in the database.

A message is committed before the server answers 250, so an accepted message is never lost.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailflow.clock import Clock
from mailflow.store.database import Database
from mailflow.store.messages import Messages

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
log = logging.getLogger(__name__)


def _clean(value: str) -> str:
    """A header as text columns take it (PostgreSQL refuses NUL characters)."""
    return value.replace("\x00", "").strip()


class InboxHandler:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.messages = Messages(db)
        self.clock = clock

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            await asyncio.to_thread(self.store, envelope.mail_from or "", envelope.rcpt_tos, raw)
        except Exception:
            # Not stored, so not accepted: the sender keeps the message and retries.
            log.exception("inbox could not store a message")
            return "451 4.3.0 Could not store the message; try again later"
        return "250 Message accepted for delivery"

    def store(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> int:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        return self.messages.receive(
            received_at=self.clock(),
            mail_from=mail_from[:320],
            rcpt_to=", ".join(rcpt_tos),
            message_id=_clean(str(headers.get("Message-ID") or ""))[:255] or None,
            subject=_clean(str(headers.get("Subject") or "")),
            raw=raw,
        )


class InboxServer:
    """Runs the inbox on the current event loop, on ``127.0.0.1:<port>``."""

    def __init__(
        self, db: Database, clock: Clock, host: str, port: int, sock: socket.socket | None = None
    ) -> None:
        self.handler = InboxHandler(db, clock)
        self.host = host
        self.port = port
        self.sock = sock
        """A socket bound already (``listen.bind``): served instead of binding host and port."""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.sock is not None:
            self._server = await loop.create_server(self._protocol, sock=self.sock)
        else:
            self._server = await loop.create_server(self._protocol, self.host, self.port)

    def _protocol(self) -> SMTP:
        return SMTP(
            self.handler,
            hostname="mailflow-inbox",
            data_size_limit=MAX_MESSAGE_BYTES,
            decode_data=False,
        )

    def serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
