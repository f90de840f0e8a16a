"""Received messages: what the inbound SMTP server accepted, with its verdict.

One row per message and recipient: when it came, from where (the peer's address, the
envelope), its kind (``bounce``, ``reply``, …), size, headers, the verdict the receiving
handler gave, why, and what it became. The rows of a message are written when its handlers
have run (it waits in ``store.spool`` until then).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select

from mailflow.store import _direct as direct
from mailflow.store.database import Transaction
from mailflow.store.models import InboundMessage, table

_table = table(InboundMessage)
_c = _table.c


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


_INSERT = insert(_table).returning(_c.id)


def add(
    tx: Transaction,
    *,
    received_at: datetime,
    peer: str,
    mail_from: str,
    rcpt_to: str,
    kind: str,
    size: int,
    message_id: str,
    subject: str,
    headers: str,
    verdict: str,
    reason: str,
    became: str,
    outbox_id: int | None,
    sale_id: int | None,
    spool_id: int | None,
) -> int:
    """The row of one recipient of a received message, with its verdict; its id."""
    values = {
        "received_at": received_at,
        "peer": _text(peer, 64),
        "mail_from": _text(mail_from, 320),
        "rcpt_to": _text(rcpt_to, 320),
        "kind": _text(kind, 16),
        "size": size,
        "message_id": _text(message_id, 255),
        "subject": _text(subject, 1000),
        "headers": _text(headers, 64 * 1024),
        "verdict": _text(verdict, 16),
        "reason": _text(reason, 2000),
        "became": _text(became, 2000),
        "outbox_id": outbox_id,
        "sale_id": sale_id,
        "spool_id": spool_id,
    }
    return int(direct.connection(tx).execute(_INSERT, values).scalar_one())


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
