"""What a kind of inbound address is: a check at ``RCPT TO`` and a handler for what arrives.

``services.inbound.KINDS`` maps each address kind (``bounce``, ``reply``) to its ``Kind``.
The handler runs in the transaction that also keeps the received message with the verdict
it returns, so what the message did and the record of it commit together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import compat32, default
from functools import cached_property

from mailflow.inbound.addresses import Address
from mailflow.services.context import ServiceContext
from mailflow.store.database import Transaction


class Received:
    """One accepted message, for one of its recipients. The message is parsed on first use:
    ``parsed`` (the standard library's compat32 parser: fast, raw header values) for reading
    fields, ``message`` (an ``EmailMessage``: decoded headers, ``get_body``) for contents."""

    def __init__(
        self, address: Address, mail_from: str, peer: str, raw: bytes, received_at: datetime
    ) -> None:
        self.address = address
        self.mail_from = mail_from
        """The envelope sender (empty for bounces: ``MAIL FROM:<>``)."""
        self.peer = peer
        """The connecting client's IP address."""
        self.raw = raw
        self.received_at = received_at

    def to(self, address: Address) -> Received:
        """The same message for another of its recipients (parsed once for all)."""
        other = Received(address, self.mail_from, self.peer, self.raw, self.received_at)
        for name in ("parsed", "message"):
            if name in self.__dict__:
                other.__dict__[name] = self.__dict__[name]
        return other

    @cached_property
    def parsed(self) -> Message:
        return BytesParser(policy=compat32).parsebytes(self.raw)

    @cached_property
    def message(self) -> EmailMessage:
        message = BytesParser(policy=default).parsebytes(self.raw)
        assert isinstance(message, EmailMessage)
        return message


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of a received message: ``verdict`` is one word (``bounced``,
    ``delayed``, ``duplicate``, ``ignored``, ``unknown``, ``unreadable``; replies add theirs),
    ``reason`` why, ``became`` what it changed, in words."""

    verdict: str
    reason: str = ""
    became: str = ""
    outbox_id: int | None = None
    sale_id: int | None = None
    email_outcome: str | None = None
    """Counted in ``mailflow_emails_total{template,outcome}`` for the outbox row once the
    transaction commits (``bounced``)."""
    template: str | None = None


Check = Callable[[ServiceContext, Address], None]
"""Raises ``inbound.addresses.UnknownAddress`` when a well-signed payload names nothing this
kind accepts (run at ``RCPT TO``: keep it cheap)."""
Handle = Callable[[ServiceContext, Transaction, Received], Verdict]


@dataclass(frozen=True, slots=True)
class Kind:
    check: Check
    receive: Handle
