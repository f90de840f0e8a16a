"""The figures ``/metrics`` shows: outbox messages and sales, counted by status, and the age
of the oldest queued email."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlmodel import col

from mailflow.store.database import Transaction
from mailflow.store.models import OutboxMessage, Sale
from mailflow.store.outbox import OUTBOX_STATUSES, QUEUED

_OUTBOX_BY_STATUS = select(col(OutboxMessage.status), func.count()).group_by(
    col(OutboxMessage.status)
)
_OLDEST_QUEUED = select(func.min(col(OutboxMessage.created_at))).where(
    col(OutboxMessage.status) == QUEUED
)
_SALES_BY_STATUS = select(col(Sale.status), func.count()).group_by(col(Sale.status))


@dataclass(frozen=True)
class StatusCounts:
    """How many outbox messages are in each status (every status, zeros included, then any
    other the table holds) and how many sales (statuses with none are absent); how long the
    oldest queued email has waited, in seconds (0 when none is queued)."""

    outbox: tuple[tuple[str, int], ...]
    sales: tuple[tuple[str, int], ...]
    oldest_queued_seconds: float = 0.0


def status_counts(tx: Transaction, now: datetime) -> StatusCounts:
    found = {str(status): int(n) for status, n in tx.execute(_OUTBOX_BY_STATUS).all()}
    outbox = {status: found.pop(status, 0) for status in OUTBOX_STATUSES} | found
    sales = tx.execute(_SALES_BY_STATUS).all()
    oldest = tx.execute(_OLDEST_QUEUED).scalar_one()
    age = 0.0
    if oldest is not None:
        oldest = oldest.replace(tzinfo=UTC) if oldest.tzinfo is None else oldest
        age = max(0.0, (now - oldest).total_seconds())
    return StatusCounts(
        outbox=tuple(outbox.items()),
        sales=tuple((str(status), int(n)) for status, n in sales),
        oldest_queued_seconds=age,
    )
