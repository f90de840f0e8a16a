"""The outbox: emails written in the transaction that caused them.

``Outbox.queue`` renders and composes the message and writes its row in the caller's
transaction, so the email commits (or not) with the state change; the delivery worker claims
the rows through ``mailflow.store.outbox`` and sends them. With DKIM configured the message is
signed here, once: the row holds the signed bytes, and every attempt (retries included) sends
exactly those, so the signature verifies whichever attempt gets through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from mailflow.clock import Clock
from mailflow.mail.compose import address, compose, new_message_id, split_address
from mailflow.mail.dkim import DkimError, DkimSigner
from mailflow.mail.templates import Renderer
from mailflow.store import outbox as store
from mailflow.store.database import Transaction
from mailflow.store.outbox import BOUNCED, DEAD, QUEUED, SENT, SUPPRESSED

log = logging.getLogger(__name__)

__all__ = [
    "BOUNCED",
    "DEAD",
    "QUEUED",
    "SENT",
    "SUPPRESSED",
    "TEST_HEADERS",
    "TEST_MARK",
    "Outbox",
    "Recipient",
]

TEST_MARK = "[TEST]"
"""Before the subject of a test send, so that nobody takes it for a real email."""
TEST_HEADERS = (("X-Mailflow-Test", "yes"),)


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    email: str
    locale: str


class Outbox:
    """Turns an email key and its context into an outbox row in the current transaction."""

    def __init__(
        self,
        renderer: Renderer,
        from_address: str,
        clock: Clock,
        *,
        dkim: DkimSigner | None = None,
    ) -> None:
        self.renderer = renderer
        self.clock = clock
        self.dkim = dkim
        name, self.sender_addr = split_address(from_address)
        self.sender_header = address(name, self.sender_addr)

    def queue(
        self,
        session: Transaction,
        key: str,
        to: Recipient,
        context: dict[str, Any],
        sale_id: int | None = None,
        sender: str | None = None,
        test: bool = False,
        reply_to: str | None = None,
    ) -> int:
        """Render ``key`` for ``to`` and write its row in the session's transaction (a plain
        INSERT, no unit of work); ``sender`` overrides From; ``test`` marks a test send
        (``[TEST]`` before the subject, ``X-Mailflow-Test: yes``); ``reply_to`` (a bare address
        mailflow made) sets Reply-To. The row's id."""
        now = self.clock()
        sender_header, sender_addr = self.sender_header, self.sender_addr
        if sender is not None:
            name, sender_addr = split_address(sender)
            sender_header = address(name, sender_addr)
        # The caller's session: a render inside a transaction must not wait on the pool.
        rendered = self.renderer.render(key, to.locale, context, session=session)
        message_id = new_message_id(sender_addr)
        subject = f"{TEST_MARK} {rendered.subject}" if test else rendered.subject
        body = compose(
            sender=sender_header,
            recipient=address(to.name, to.email),
            subject=subject,
            text=rendered.text,
            html=rendered.html,
            message_id=message_id,
            date=now,
            template=key,
            headers=TEST_HEADERS if test else (),
            reply_to=None if reply_to is None else address("", reply_to),
        )
        note = rendered.fallback
        if self.dkim is not None:
            try:
                body = self.dkim.sign(body)
            except DkimError as exc:
                # Like a published template that fails: the state change must not fail for
                # it. The email goes unsigned, and the row says so.
                unsigned = f"sent without a DKIM signature: {exc}"
                log.error("%s/%s: %s", key, to.locale, unsigned)
                note = f"{note}; {unsigned}" if note else unsigned
        return store.add(
            session,
            template=key,
            locale=to.locale,
            sender=sender_addr,
            recipient=to.email,
            subject=subject,
            message_id=message_id,
            body=body,
            sale_id=sale_id,
            at=now,
            note=note,
        )
