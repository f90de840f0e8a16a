"""The inbound spool: received messages kept (committed) before the SMTP server answers
``250``, waiting for their recipients' handlers.

A message is spooled with its envelope (sender, the recipients accepted) and its bytes; the
processor claims spooled messages in id order (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
that several processes share the work; SQLite's single writer serialises them), runs the
handlers and removes the message in the transaction that keeps its ``inbound_messages``
rows. A handler that fails leaves the message in the spool for a later try
(``postpone``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update

from mailflow.store import _direct as direct
from mailflow.store.database import Transaction
from mailflow.store.models import InboundSpool, table

_table = table(InboundSpool)
_c = _table.c


@dataclass(frozen=True, slots=True)
class Spooled:
    id: int
    received_at: datetime
    peer: str
    mail_from: str
    recipients: list[str]
    raw: bytes
    attempts: int


@dataclass(frozen=True, slots=True)
class New:
    received_at: datetime
    peer: str
    mail_from: str
    recipients: list[str]
    raw: bytes


_INSERT = insert(_table).returning(_c.id, sort_by_parameter_order=True)


def add(tx: Transaction, messages: list[New]) -> list[int]:
    """Spool messages, to be handled from now on, in one statement; their ids, in order."""
    values = [
        {
            "received_at": m.received_at,
            "peer": m.peer[:64],
            "mail_from": m.mail_from[:320],
            "recipients": "\n".join(m.recipients),
            "raw": m.raw,
            "attempts": 0,
            "not_before": m.received_at,
            "last_error": "",
        }
        for m in messages
    ]
    return [int(i) for i in tx.connection().execute(_INSERT, values).scalars()]


@lru_cache(maxsize=8)
def _claim_statement(limit: int, skip_locked: bool) -> Any:
    query = (
        select(_c.id, _c.received_at, _c.peer, _c.mail_from, _c.recipients, _c.raw, _c.attempts)
        .where(_c.not_before <= bindparam("b_now"))
        .order_by(_c.id)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return query


def claim(tx: Transaction, now: datetime, limit: int) -> list[Spooled]:
    """Up to ``limit`` spooled messages due at ``now``, oldest first, held by ``tx`` (on
    PostgreSQL, skipping those another transaction holds)."""
    run = direct.connection(tx)
    skip_locked = run.dialect.name != "sqlite"
    rows = run.execute(_claim_statement(limit, skip_locked), {"b_now": now})
    return [
        Spooled(id, _utc(at), peer, mail_from, recipients.split("\n"), raw, attempts)
        for id, at, peer, mail_from, recipients, raw, attempts in rows
    ]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # SQLite: naive


_REMOVE = delete(_table).where(_c.id.in_(bindparam("b_ids", expanding=True)))


def remove(tx: Transaction, spool_ids: list[int]) -> None:
    """Take handled messages out of the spool."""
    if spool_ids:
        tx.connection().execute(_REMOVE, {"b_ids": spool_ids})


_POSTPONE = (
    update(_table)
    .where(_c.id == bindparam("b_id"))
    .values(
        attempts=bindparam("b_attempts"),
        not_before=bindparam("b_not_before"),
        last_error=bindparam("b_error"),
    )
)


def postpone(
    tx: Transaction, spool_id: int, *, attempts: int, not_before: datetime, error: str
) -> None:
    """A message whose handling failed, to be tried again at ``not_before``."""
    direct.connection(tx).execute(
        _POSTPONE,
        {"b_id": spool_id, "b_attempts": attempts, "b_not_before": not_before, "b_error": error},
    )


def count(tx: Transaction) -> int:
    """How many messages wait in the spool."""
    total: int = tx.connection().execute(select(func.count()).select_from(_table)).scalar_one()
    return total
