"""The suppression list: addresses no mail is sent to (hard bounces), until lifted.

Addresses are kept lowercased. ``add`` inserts only an address not yet on the list and says
whether it did, so one suppression, however many processes receive its bounce at once, is
announced once. Lifting one puts the mail held for it back in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mailflow.store.database import Transaction, mail_queued
from mailflow.store.models import OutboxMessage, Suppression, table

HARD_BOUNCE = "hard_bounce"
SUPPRESSED = "suppressed"

_table = table(Suppression)
_outbox = table(OutboxMessage)


@dataclass(frozen=True, slots=True)
class SuppressionRecord:
    email: str
    reason: str
    detail: str
    outbox_id: int | None
    created_at: datetime


def fold(email: str) -> str:
    return email.strip().lower()


def add(
    tx: Transaction, email: str, *, reason: str, detail: str, outbox_id: int | None, at: datetime
) -> bool:
    """Put ``email`` on the list; False when it already was (nothing changes then)."""
    values = {
        "email": fold(email)[:320],
        "reason": reason,
        "detail": detail,
        "outbox_id": outbox_id,
        "created_at": at,
    }
    statement = _insert_if_absent(tx.get_bind().dialect.name)
    return tx.connection().execute(statement, values).first() is not None


@lru_cache(maxsize=4)
def _insert_if_absent(dialect: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING email``, built once per dialect."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(_table).on_conflict_do_nothing().returning(_table.c.email)


def get(tx: Transaction, email: str) -> SuppressionRecord | None:
    row = tx.connection().execute(select(_table).where(_table.c.email == fold(email))).first()
    return SuppressionRecord(*row) if row is not None else None


def suppressed_among(tx: Transaction, emails: set[str]) -> set[str]:
    """Which of ``emails`` (lowercased) are on the list."""
    if not emails:
        return set()
    folded = {fold(e) for e in emails}
    rows = tx.connection().execute(select(_table.c.email).where(_table.c.email.in_(folded)))
    return {row[0] for row in rows}


def listing(tx: Transaction, *, limit: int, offset: int = 0) -> list[SuppressionRecord]:
    rows = tx.connection().execute(
        select(_table)
        .order_by(_table.c.created_at.desc(), _table.c.email)
        .limit(limit)
        .offset(offset)
    )
    return [SuppressionRecord(*row) for row in rows]


def count(tx: Transaction) -> int:
    total: int = tx.connection().execute(select(func.count()).select_from(_table)).scalar_one()
    return total


def lift(tx: Transaction, email: str, at: datetime) -> int | None:
    """Take ``email`` off the list and queue again the mail held for it (due ``at``); how
    many rows were queued again, None when the address was not on the list."""
    gone = tx.connection().execute(delete(_table).where(_table.c.email == fold(email)))
    if not gone.rowcount:
        return None
    requeued = tx.connection().execute(
        update(_outbox)
        .where(_outbox.c.status == SUPPRESSED, func.lower(_outbox.c.recipient) == fold(email))
        .values(status="queued", next_attempt_at=at, lease_until=None)
    )
    if requeued.rowcount:
        mail_queued(tx)
    return int(requeued.rowcount)


__all__ = ["HARD_BOUNCE", "SuppressionRecord", "add", "count", "get", "lift", "listing"]
