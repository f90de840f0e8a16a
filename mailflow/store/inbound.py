"""Received messages: what the inbound SMTP server accepted, with its verdict.

One row per message and recipient: when it came, from where (the peer's address, the
envelope), its kind (``bounce``, ``reply``, …), size, headers, the verdict the receiving
handler gave, why, and what it became. A row is written ``pending`` when its message is
spooled (``store.spool``) and ``settle``d when the handler has run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, update

from mailflow.store import _direct as direct
from mailflow.store.database import Transaction
from mailflow.store.models import InboundMessage, table

_table = table(InboundMessage)
_c = _table.c

PENDING = "pending"
"""The verdict of a row whose message waits in the spool for its handler."""


@dataclass(frozen=True, slots=True)
class ReceivedRecord:
    id: int
    received_at: datetime
    peer: str
    mail_from: str
    rcpt_to: str
    kind: str
    size: int
    message_id: str
    subject: str
    headers: str
    verdict: str
    reason: str
    became: str
    outbox_id: int | None
    sale_id: int | None
    spool_id: int | None


def _text(value: str, limit: int) -> str:
    """As a text column takes it (PostgreSQL refuses NUL characters)."""
    return value.replace("\x00", "")[:limit]


@dataclass(frozen=True, slots=True)
class New:
    """One recipient of a message being spooled."""

    received_at: datetime
    peer: str
    mail_from: str
    rcpt_to: str
    kind: str
    size: int
    headers: str
    spool_id: int


_INSERT = insert(_table).returning(_c.id, sort_by_parameter_order=True)


def add(tx: Transaction, rows: list[New]) -> list[int]:
    """The ``pending`` rows of the recipients of spooled messages, in one statement; their
    ids, in order."""
    values = [
        {
            "received_at": r.received_at,
            "peer": _text(r.peer, 64),
            "mail_from": _text(r.mail_from, 320),
            "rcpt_to": _text(r.rcpt_to, 320),
            "kind": _text(r.kind, 16),
            "size": r.size,
            "message_id": "",
            "subject": "",
            "headers": _text(r.headers, 64 * 1024),
            "verdict": PENDING,
            "reason": "",
            "became": "",
            "spool_id": r.spool_id,
        }
        for r in rows
    ]
    return [int(i) for i in tx.connection().execute(_INSERT, values).scalars()]


@dataclass(frozen=True, slots=True)
class PendingRow:
    id: int
    spool_id: int
    rcpt_to: str
    kind: str


_PENDING_OF = (
    select(_c.id, _c.spool_id, _c.rcpt_to, _c.kind)
    .where(_c.spool_id.in_(bindparam("b_spools", expanding=True)), _c.verdict == PENDING)
    .order_by(_c.id)
)


def pending_of(tx: Transaction, spool_ids: list[int]) -> dict[int, list[PendingRow]]:
    """The rows still ``pending`` of spooled messages, by message, in the order they came."""
    found: dict[int, list[PendingRow]] = {}
    for row in tx.connection().execute(_PENDING_OF, {"b_spools": spool_ids}):
        found.setdefault(row.spool_id, []).append(PendingRow(*row))
    return found


_SETTLE = (
    update(_table)
    .where(_c.id == bindparam("b_id"))
    .values(
        message_id=bindparam("b_message_id"),
        subject=bindparam("b_subject"),
        verdict=bindparam("b_verdict"),
        reason=bindparam("b_reason"),
        became=bindparam("b_became"),
        outbox_id=bindparam("b_outbox_id"),
        sale_id=bindparam("b_sale_id"),
    )
)


def settle(
    tx: Transaction,
    row_id: int,
    *,
    message_id: str,
    subject: str,
    verdict: str,
    reason: str,
    became: str,
    outbox_id: int | None,
    sale_id: int | None,
) -> None:
    """A row's verdict, why, what the message became, and the fields read from it."""
    direct.connection(tx).execute(
        _SETTLE,
        {
            "b_id": row_id,
            "b_message_id": _text(message_id, 255),
            "b_subject": _text(subject, 1000),
            "b_verdict": _text(verdict, 16),
            "b_reason": _text(reason, 2000),
            "b_became": _text(became, 2000),
            "b_outbox_id": outbox_id,
            "b_sale_id": sale_id,
        },
    )


def listing(
    tx: Transaction, *, limit: int, offset: int = 0, kind: str | None = None
) -> list[ReceivedRecord]:
    query = select(_table).order_by(_c.id.desc()).limit(limit).offset(offset)
    if kind is not None:
        query = query.where(_c.kind == kind)
    return [ReceivedRecord(*row) for row in tx.connection().execute(query)]


def count(tx: Transaction, *, kind: str | None = None) -> int:
    query = select(func.count()).select_from(_table)
    if kind is not None:
        query = query.where(_c.kind == kind)
    total: int = tx.connection().execute(query).scalar_one()
    return total


def get(tx: Transaction, row_id: int) -> ReceivedRecord | None:
    row = tx.connection().execute(select(_table).where(_c.id == row_id)).first()
    return ReceivedRecord(*row) if row is not None else None
