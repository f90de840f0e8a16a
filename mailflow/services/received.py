"""What a kind of inbound address is: a check at ``RCPT TO`` and a handler for what arrives.

``services.inbound.KINDS`` maps each address kind (``bounce``, ``reply``) to its ``Kind``.
The handler runs in the transaction that also keeps the received message with the verdict
it returns, so what the message did and the record of it commit together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from mailflow.inbound.addresses import Address
from mailflow.services.context import ServiceContext
from mailflow.store.database import Transaction


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted message, for one of its recipients."""

    address: Address
    mail_from: str
    """The envelope sender (empty for bounces: ``MAIL FROM:<>``)."""
    peer: str
    """The connecting client's IP address."""
    raw: bytes
    message: EmailMessage
    received_at: datetime


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


Check = Callable[[ServiceContext, Address], None]
"""Raises ``inbound.addresses.UnknownAddress`` when a well-signed payload names nothing this
kind accepts (run at ``RCPT TO``: keep it cheap)."""
Handle = Callable[[ServiceContext, Transaction, Received], Verdict]


@dataclass(frozen=True, slots=True)
class Kind:
    check: Check
    receive: Handle
