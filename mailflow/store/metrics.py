"""The figures ``/metrics`` shows: outbox messages and sales, counted by status."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import col

from mailflow.store.database import Database
from mailflow.store.models import OutboxMessage, Sale

_OUTBOX_BY_STATUS = select(col(OutboxMessage.status), func.count()).group_by(
    col(OutboxMessage.status)
)
_SALES_BY_STATUS = select(col(Sale.status), func.count()).group_by(col(Sale.status))


@dataclass(frozen=True)
class StatusCounts:
    """How many outbox messages and how many sales are in each status (statuses with none
    are absent), in the order the database grouped them."""

    outbox: tuple[tuple[str, int], ...]
    sales: tuple[tuple[str, int], ...]


def status_counts(db: Database) -> StatusCounts:
    with db.read() as session:
        outbox = session.execute(_OUTBOX_BY_STATUS).all()
        sales = session.execute(_SALES_BY_STATUS).all()
    return StatusCounts(
        outbox=tuple((str(status), int(n)) for status, n in outbox),
        sales=tuple((str(status), int(n)) for status, n in sales),
    )
