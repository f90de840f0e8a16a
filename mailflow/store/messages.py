"""The outbox and the embedded inbox as the console lists and shows them, and the one write
the console makes on mail: a message put back in the queue."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, func, or_, select, update
from sqlmodel import SQLModel, col

from mailflow.store import models
from mailflow.store.database import Database, mail_queued
from mailflow.store.models import OutboxAttempt
from mailflow.store.outbox import add_attempt

_outbox = models.OutboxMessage.metadata.tables["outbox"]
_Out = models.OutboxMessage
_In = models.InboxMessage


@dataclass(frozen=True)
class Slice:
    """Which rows of a listing, newest first: ``limit`` rows after skipping ``offset``."""

    offset: int
    limit: int


@dataclass(frozen=True)
class OutboxEntry:
    """An outbox row without its body."""

    id: int
    template: str
    recipient: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
    sale_id: int | None
    note: str | None


@dataclass(frozen=True)
class OutboxMessage:
    """An outbox row with the complete message (``body``: its bytes as sent)."""

    id: int
    template: str
    locale: str
    sender: str
    recipient: str
    subject: str
    message_id: str
    body: bytes
    sale_id: int | None
    status: str
    attempts: int
    next_attempt_at: datetime
    lease_until: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    note: str | None


@dataclass(frozen=True)
class Attempt:
    """A line of an outbox message's history."""

    at: datetime
    outcome: str  # "failed", "dead" or "retried"
    detail: str


@dataclass(frozen=True)
class SaleMail:
    """An email queued about a sale, as the sale's console page lists it."""

    id: int
    template: str
    recipient: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class InboxEntry:
    """A received message without its raw bytes."""

    id: int
    received_at: datetime
    mail_from: str
    rcpt_to: str
    subject: str


@dataclass(frozen=True)
class InboxMessage:
    id: int
    received_at: datetime
    mail_from: str
    rcpt_to: str
    message_id: str | None
    subject: str
    raw: bytes


Whole = TypeVar("Whole", OutboxMessage, InboxMessage)


def _copy(kind: type[Whole], row: object) -> Whole:
    """The row's columns as ``kind``, whose fields are named as they are."""
    return kind(**{f.name: getattr(row, f.name) for f in fields(kind)})


def _columns(model: type[SQLModel], kind: type[object]) -> list[Any]:
    """The model's columns named as ``kind``'s fields, in their order."""
    return [col(getattr(model, f.name)) for f in fields(kind)]  # type: ignore[arg-type]


class Messages:
    def __init__(self, db: Database) -> None:
        self._db = db

    def outbox_counts(self) -> dict[str, int]:
        """How many outbox rows are in each status (absent statuses have none)."""
        with self._db.read() as session:
            rows = session.execute(
                select(col(_Out.status), func.count()).group_by(col(_Out.status))
            ).all()
        return {status: count for status, count in rows}

    def outbox(self, status: str | None, rows: Slice) -> list[OutboxEntry]:
        statement = select(*_columns(_Out, OutboxEntry))
        if status:
            statement = statement.where(col(_Out.status) == status)
        statement = statement.order_by(col(_Out.id).desc()).offset(rows.offset).limit(rows.limit)
        with self._db.read() as session:
            return [OutboxEntry(*row) for row in session.execute(statement)]

    def outbox_message(self, message_id: int) -> OutboxMessage | None:
        with self._db.read() as session:
            row = session.get(_Out, message_id)
        return None if row is None else _copy(OutboxMessage, row)

    def mail_about(self, sale_id: int) -> list[SaleMail]:
        """The emails queued about a sale, oldest first."""
        statement = (
            select(*_columns(_Out, SaleMail))
            .where(col(_Out.sale_id) == sale_id)
            .order_by(col(_Out.id))
        )
        with self._db.read() as session:
            return [SaleMail(*row) for row in session.execute(statement)]

    def attempts(self, message_id: int) -> list[Attempt]:
        """The message's history, oldest first."""
        statement = (
            select(*_columns(OutboxAttempt, Attempt))
            .where(col(OutboxAttempt.message_id) == message_id)
            .order_by(col(OutboxAttempt.id))
        )
        with self._db.read() as session:
            return [Attempt(*row) for row in session.execute(statement)]

    def requeue(self, message_id: int, at: datetime, *, only_from: str, to: str) -> str | None:
        """Put the message in status ``to``, due at ``at`` with a fresh retry schedule
        (``created_at`` is ``at``, no attempts), if it is in status ``only_from``; a
        compare-and-set, so two requeues of one message succeed once. ``last_error`` stays,
        and the history gets a ``retried`` line saying what the schedule had been.

        Answers the status the message was in (``only_from`` when it was requeued), or None
        when there is no such message.
        """
        with self._db.transaction() as session:
            requeue = (
                update(_outbox)
                .where(_outbox.c.id == message_id, _outbox.c.status == only_from)
                .values(status=to, next_attempt_at=at, created_at=at, attempts=0, lease_until=None)
            )
            before = session.execute(
                select(_outbox.c.attempts, _outbox.c.created_at).where(_outbox.c.id == message_id)
            ).first()
            if session.connection().execute(requeue).rowcount:
                assert before is not None
                since = before[1].strftime("%Y-%m-%d %H:%M:%S UTC")
                detail = f"after {before[0]} attempt(s) since {since}"
                add_attempt(session, message_id, at, "retried", detail)
                mail_queued(session)  # wakes the delivery worker after the commit
                return only_from
            status: str | None = session.execute(
                select(_outbox.c.status).where(_outbox.c.id == message_id)
            ).scalar()
            return status

    def receive(
        self,
        *,
        received_at: datetime,
        mail_from: str,
        rcpt_to: str,
        message_id: str | None,
        subject: str,
        raw: bytes,
    ) -> int:
        """Keep a message the embedded inbox received, committed when this returns; its id."""
        with self._db.transaction() as session:
            row = _In(
                received_at=received_at,
                mail_from=mail_from,
                rcpt_to=rcpt_to,
                message_id=message_id,
                subject=subject,
                raw=raw,
            )
            session.add(row)
            session.flush()
            assert row.id is not None
            return row.id

    def has_inbox(self) -> bool:
        with self._db.read() as session:
            return session.execute(select(col(_In.id)).limit(1)).first() is not None

    def inbox(self, rows: Slice, search: str = "") -> list[InboxEntry]:
        """Newest first; ``search``: words each found (without case) in the recipient or the
        subject."""
        statement = select(*_columns(_In, InboxEntry))
        for word in search.split():
            pattern = (
                "%"
                + word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                + "%"
            )
            statement = statement.where(
                or_(
                    func.lower(col(_In.rcpt_to)).like(pattern, escape="\\"),
                    func.lower(col(_In.subject)).like(pattern, escape="\\"),
                )
            )
        statement = statement.order_by(col(_In.id).desc()).offset(rows.offset).limit(rows.limit)
        with self._db.read() as session:
            return [InboxEntry(*row) for row in session.execute(statement)]

    def clear_inbox(self) -> int:
        """Delete every message the embedded inbox holds; how many there were."""
        with self._db.transaction() as session:
            result = session.execute(delete(_In))
            return int(getattr(result, "rowcount", 0) or 0)

    def inbox_message(self, message_id: int) -> InboxMessage | None:
        with self._db.read() as session:
            row = session.get(_In, message_id)
        return None if row is None else _copy(InboxMessage, row)
