"""The embedded SMTP inbox: an aiosmtpd server that keeps what it receives in the database.

A message is committed before the server answers 250, so an accepted message is never lost.

Addresses matching ``smtp.embedded_bounce_pattern`` (``*@bounce.example``) do not exist: when
envelope sender is a return path (inbound mail is on), the inbox accepts the message as a
relay would and then sends a DSN (``mail.dsn``) to that return path on the inbound server, so
the whole bounce flow can be seen on a laptop; when there is no return path to tell, it
refuses the recipient at ``RCPT`` with ``550 5.1.1``, as the last relay would.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailflow.clock import Clock
from mailflow.mail.dsn import failure_report
from mailflow.store.database import Database
from mailflow.store.messages import Messages

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
log = logging.getLogger(__name__)


def _clean(value: str) -> str:
    """A header as text columns take it (PostgreSQL refuses NUL characters)."""
    return value.replace("\x00", "").strip()


class InboxHandler:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        bounce_pattern: str = "",
        return_paths: tuple[str, tuple[str, int]] | None = None,
    ) -> None:
        """``return_paths``: the inbound domain and the inbound server's address, when a DSN
        can be sent back; None: addresses of ``bounce_pattern`` are refused at RCPT."""
        self.messages = Messages(db)
        self.clock = clock
        self.bounce_pattern = bounce_pattern.lower()
        self.return_paths = return_paths
        self._dsn_tasks: set[asyncio.Task[None]] = set()

    def _does_not_exist(self, address: str) -> bool:
        return bool(self.bounce_pattern) and fnmatch.fnmatchcase(
            address.lower(), self.bounce_pattern
        )

    def _returns_to(self, mail_from: str) -> bool:
        if self.return_paths is None:
            return False
        return mail_from.lower().endswith("@" + self.return_paths[0])

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self._does_not_exist(address) and not self._returns_to(envelope.mail_from or ""):
            return "550 5.1.1 Mailbox does not exist (smtp.embedded_bounce_pattern)"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        mail_from = envelope.mail_from or ""
        kept = [r for r in envelope.rcpt_tos if not self._does_not_exist(r)]
        gone = [r for r in envelope.rcpt_tos if self._does_not_exist(r)]
        try:
            if kept:
                await asyncio.to_thread(self.store, mail_from, kept, raw)
        except Exception:
            # Not stored, so not accepted: the sender keeps the message and retries.
            log.exception("inbox could not store a message")
            return "451 4.3.0 Could not store the message; try again later"
        for recipient in gone:
            task = asyncio.create_task(self._bounce(mail_from, recipient, raw))
            self._dsn_tasks.add(task)
            task.add_done_callback(self._dsn_tasks.discard)
        return "250 Message accepted for delivery"

    async def _bounce(self, return_path: str, recipient: str, raw: bytes) -> None:
        """Send the DSN of ``recipient`` to ``return_path`` on the inbound server."""
        assert self.return_paths is not None
        host, port = self.return_paths[1]
        end = raw.find(b"\r\n\r\n")
        report = failure_report(
            to=return_path,
            recipient=recipient,
            original_headers=raw[: end if end >= 0 else 0],
            at=self.clock(),
        )
        try:
            smtp = aiosmtplib.SMTP(hostname=host, port=port, timeout=30)
            async with smtp:
                await smtp.sendmail("", [return_path], report)  # MAIL FROM:<>, as DSNs are
            log.info("inbox: bounced %s back to %s", recipient, return_path)
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("inbox: could not send the bounce of %s: %s", recipient, exc)

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
        self,
        db: Database,
        clock: Clock,
        host: str,
        port: int,
        *,
        bounce_pattern: str = "",
        return_paths: tuple[str, tuple[str, int]] | None = None,
    ) -> None:
        self.handler = InboxHandler(
            db, clock, bounce_pattern=bounce_pattern, return_paths=return_paths
        )
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port)

    def _protocol(self) -> SMTP:
        return SMTP(
            self.handler,
            hostname="mailflow-inbox",
            data_size_limit=MAX_MESSAGE_BYTES,
            decode_data=False,
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
