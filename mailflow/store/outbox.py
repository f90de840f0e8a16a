"""The outbox table: a queued email's row, and the delivery worker's claims and results.

``OutboxStore`` is what the delivery worker uses: claim due rows with a lease (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL; SQLite's single writer makes the ``UPDATE … RETURNING`` claim
atomic there), and record the results. A row whose lease runs out without a result — its
worker crashed — is claimed again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import bindparam, func, insert, or_, select, update

from mailflow.store import _direct as direct
from mailflow.store.database import Database, Transaction, mail_queued
from mailflow.store.models import OutboxAttempt, OutboxMessage, table

QUEUED = "queued"
SENT = "sent"
DEAD = "dead"
BOUNCED = "bounced"
"""A DSN said the recipient's server refused it for good (``bounce_status``, ``_diagnostic``)."""
SUPPRESSED = "suppressed"
"""Held: the recipient is on the suppression list; queued again when it is lifted."""
OUTBOX_STATUSES = (QUEUED, SENT, DEAD, BOUNCED, SUPPRESSED)
"""Every status an outbox row can have (``/metrics`` lists each, zeros included)."""

_table = table(OutboxMessage)
_attempts = table(OutboxAttempt)
_c = _table.c


def add(
    tx: Transaction,
    *,
    template: str,
    locale: str,
    sender: str,
    recipient: str,
    subject: str,
    message_id: str,
    body: bytes,
    sale_id: int | None,
    at: datetime,
    note: str | None = None,
) -> int:
    """Write a composed email's row, due ``at``, in ``tx`` (a plain INSERT, no unit of work),
    and wake the delivery worker once ``tx`` commits. The row's id."""
    values = {
        "template": template,
        "locale": locale,
        "sender": sender,
        "recipient": recipient,
        "subject": subject,
        "message_id": message_id,
        "body": body,
        "sale_id": sale_id,
        "status": QUEUED,
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
        "note": note,
    }
    row_id = direct.connection(tx).execute(_INSERT, values).scalar_one()
    mail_queued(tx)
    return int(row_id)


_INSERT = insert(_table).returning(_c.id)
_RECORD_SENT = (
    update(_table)
    .where(_c.id == bindparam("b_id"), _c.status == QUEUED, _c.lease_until == bindparam("b_lease"))
    .values(status=SENT, sent_at=bindparam("b_sent_at"), lease_until=None, last_error=None)
)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    sender: str
    recipient: str
    body: bytes
    attempts: int
    created_at: datetime
    lease_until: datetime
    """Also the claim's token: a result is written only while the row still holds it."""
    template: str = ""


@lru_cache(maxsize=8)
def _claim_statement(limit: int, skip_locked: bool) -> Any:
    """Claim up to ``limit`` due rows (built once per limit: a worker claims every moment)."""
    now: Any = bindparam("b_now")
    due = (
        select(_c.id)
        .where(
            _c.status == QUEUED,
            _c.next_attempt_at <= now,
            or_(_c.lease_until.is_(None), _c.lease_until < now),
        )
        .order_by(_c.next_attempt_at, _c.id)
        .limit(limit)
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    return (
        update(_table)
        .where(_c.id.in_(due.scalar_subquery()))
        .values(lease_until=bindparam("b_lease_until"), attempts=_c.attempts + 1)
        .returning(
            _c.id,
            _c.sender,
            _c.recipient,
            _c.body,
            _c.attempts,
            _c.created_at,
            _c.lease_until,
            _c.template,
        )
    )


@dataclass(frozen=True, slots=True)
class Result:
    id: int
    lease_until: datetime
    status: str  # SENT, QUEUED (retry later) or DEAD
    error: str | None = None
    next_attempt_at: datetime | None = None


class OutboxStore:
    def __init__(
        self,
        db: Database,
        lease_seconds: float,
        on_suppressed: Callable[[list[str]], None] | None = None,
    ) -> None:
        """``on_suppressed``: told the templates of the rows a claim held as suppressed."""
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self.on_suppressed = on_suppressed

    def claim(self, limit: int, now: datetime) -> list[Claimed]:
        """Due rows, leased to the caller; a row to a suppressed address is held as
        ``suppressed`` in the same transaction instead of being handed out."""
        claim = _claim_statement(limit, not self.db.is_sqlite)
        with self.db.transaction() as session:
            rows = (
                direct.connection(session)
                .execute(claim, {"b_now": now, "b_lease_until": now + self.lease})
                .all()
            )
            held = _hold_suppressed(session, [row[0] for row in rows]) if rows else {}
        if held and self.on_suppressed is not None:
            self.on_suppressed(list(held.values()))
        return sorted((Claimed(*row) for row in rows if row[0] not in held), key=lambda c: c.id)

    def record(self, results: Iterable[Result], now: datetime) -> None:
        """Write results, each only if its row is still held by the claim that sent it.

        A worker whose lease ran out may report late, after another worker claimed the row
        again and delivered it; such a stale result is dropped rather than undoing that.
        """
        results = list(results)
        sent = [
            cast(Mapping[str, Any], {"b_id": r.id, "b_lease": r.lease_until, "b_sent_at": now})
            for r in results
            if r.status == SENT
        ]
        with self.db.transaction() as session:
            if sent:
                # The common case, one statement for the whole batch (an executemany).
                direct.connection(session).executemany(_RECORD_SENT, sent)
            for r in results:
                if r.status == SENT:
                    continue
                values: dict[str, Any] = {"status": r.status, "lease_until": None}
                values["last_error"] = (r.error or "")[:2000]
                if r.next_attempt_at is not None:
                    values["next_attempt_at"] = r.next_attempt_at
                changed = session.execute(
                    update(_table)
                    .where(
                        _c.id == r.id,
                        _c.status == QUEUED,
                        _c.lease_until == r.lease_until,
                    )
                    .values(**values)
                )
                if changed.rowcount:  # type: ignore[attr-defined]
                    outcome = "dead" if r.status == DEAD else "failed"
                    add_attempt(session, r.id, now, outcome, values["last_error"])

    def release(self, claimed: Iterable[Claimed]) -> None:
        """Give claimed rows back at once (a clean shutdown), without waiting for the lease."""
        claimed = list(claimed)
        if claimed:
            with self.db.transaction() as session:
                for item in claimed:
                    session.execute(
                        update(_table)
                        .where(
                            _c.id == item.id,
                            _c.status == QUEUED,
                            _c.lease_until == item.lease_until,
                        )
                        .values(lease_until=None, attempts=_c.attempts - 1)
                    )

    def next_due(self) -> datetime | None:
        """When the next queued row can be claimed (its retry time, or its lease's end)."""
        with self.db.read() as session:
            rows = session.execute(
                select(_c.next_attempt_at, _c.lease_until)
                .where(_c.status == QUEUED)
                .order_by(_c.next_attempt_at)
                .limit(1000)
            ).all()
        times = [max(n, lease) if lease is not None else n for n, lease in rows]
        return min(times, default=None)

    def pending_count(self) -> int:
        with self.db.read() as session:
            count: int = session.execute(
                select(func.count()).select_from(_table).where(_c.status == QUEUED)
            ).scalar_one()
            return count


def _hold_suppressed(tx: Transaction, ids: list[int]) -> dict[int, str]:
    """Mark those of ``ids`` whose recipient is suppressed ``suppressed``; their templates."""
    from mailflow.store.models import Suppression

    listed = select(table(Suppression).c.email)
    held = tx.connection().execute(
        update(_table)
        .where(_c.id.in_(ids), func.lower(_c.recipient).in_(listed.scalar_subquery()))
        .values(status=SUPPRESSED, lease_until=None)
        .returning(_c.id, _c.template)
    )
    return {int(row_id): template for row_id, template in held}


@dataclass(frozen=True, slots=True)
class OutboxFacts:
    """What an inbound bounce needs to know of the row it names."""

    id: int
    template: str
    recipient: str
    sale_id: int | None
    status: str


_FACTS = select(_c.id, _c.template, _c.recipient, _c.sale_id, _c.status).where(
    _c.id == bindparam("b_id")
)


def facts(tx: Transaction, row_id: int) -> OutboxFacts | None:
    row = direct.connection(tx).execute(_FACTS, {"b_id": row_id}).first()
    return OutboxFacts(*row) if row is not None else None


_MARK_BOUNCED = (
    update(_table)
    .where(_c.id == bindparam("b_id"), _c.status != BOUNCED)
    .values(
        status=BOUNCED,
        bounce_status=bindparam("b_status"),
        bounce_diagnostic=bindparam("b_diagnostic"),
        lease_until=None,
    )
)


def mark_bounced(tx: Transaction, row_id: int, status: str, diagnostic: str, at: datetime) -> bool:
    """The row ``bounced`` with the DSN's status code and diagnostic, unless it already was
    (a DSN received twice, or by two processes at once: one wins). Whether it changed."""
    changed = direct.connection(tx).execute(
        _MARK_BOUNCED,
        {"b_id": row_id, "b_status": status[:16], "b_diagnostic": diagnostic[:2000]},
    )
    if not changed.rowcount:
        return False
    add_attempt(tx, row_id, at, "bounced", f"{status} {diagnostic}"[:2000])
    return True


@dataclass(frozen=True, slots=True)
class SaleEmail:
    """One email about a sale, as ``GET /api/v1/sales/{id}`` lists it."""

    id: int
    template: str
    recipient: str
    status: str
    message_id: str
    bounce_status: str | None
    bounce_diagnostic: str | None
    created_at: datetime
    sent_at: datetime | None


def of_sale(tx: Transaction, sale_id: int) -> list[SaleEmail]:
    rows = tx.connection().execute(
        select(
            _c.id,
            _c.template,
            _c.recipient,
            _c.status,
            _c.message_id,
            _c.bounce_status,
            _c.bounce_diagnostic,
            _c.created_at,
            _c.sent_at,
        )
        .where(_c.sale_id == sale_id)
        .order_by(_c.id)
    )
    return [SaleEmail(*row) for row in rows]


def add_attempt(tx: Transaction, message_id: int, at: datetime, outcome: str, detail: str) -> None:
    """One line of a message's history (``failed``, ``dead``, ``retried``)."""
    direct.connection(tx).execute(
        _ADD_ATTEMPT, {"message_id": message_id, "at": at, "outcome": outcome, "detail": detail}
    )


_ADD_ATTEMPT = insert(_attempts)
