"""Sales' conversations in the database: the messages of one sale, oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select

from mailflow.store.database import Transaction
from mailflow.store.models import ConversationMessage, table

_messages = table(ConversationMessage)
_c = _messages.c


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: int
    sale_id: int
    author: str
    body: str
    channel: str
    status: str
    created_at: datetime


_COLUMNS = (_c.id, _c.sale_id, _c.author, _c.body, _c.channel, _c.status, _c.created_at)


def _record(row: object) -> MessageRecord:
    record = MessageRecord(*row)  # type: ignore[misc]
    at = record.created_at
    if at.tzinfo is None:  # SQLite keeps naive UTC
        object.__setattr__(record, "created_at", at.replace(tzinfo=UTC))
    return record


def add(
    tx: Transaction,
    *,
    sale_id: int,
    author: str,
    body: str,
    channel: str,
    status: str,
    at: datetime,
    source: str | None = None,
) -> MessageRecord | None:
    """Write a message in ``tx``; None when the email ``source`` is already in this sale's
    conversation (the same email delivered twice). Two deliveries of one email at the same
    moment: the unique constraint fails the later transaction, whose sender retries."""
    values = {
        "sale_id": sale_id,
        "author": author,
        "body": body,
        "channel": channel,
        "status": status,
        "source": source,
        "created_at": at,
    }
    if source is not None and seen(tx, sale_id, source):
        return None
    row_id = tx.execute(insert(_messages).returning(_c.id), values).scalar_one()
    return MessageRecord(int(row_id), sale_id, author, body, channel, status, at)


def seen(tx: Transaction, sale_id: int, source: str) -> bool:
    """Whether the email ``source`` already joined the sale's conversation."""
    found = tx.execute(
        select(_c.id).where(_c.sale_id == sale_id, _c.source == source).limit(1)
    ).first()
    return found is not None


def of_sale(tx: Transaction, sale_id: int) -> list[MessageRecord]:
    rows = tx.execute(select(*_COLUMNS).where(_c.sale_id == sale_id).order_by(_c.id)).all()
    return [_record(row) for row in rows]
