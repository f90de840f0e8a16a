"""Webhook endpoints, their events, deliveries and attempts; the webhook worker's claims.

Events and deliveries are written in the transaction of the change that caused them. The
worker claims due deliveries with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
single writer on SQLite), one endpoint and subject at a time in ``sequence`` order: a
delivery is claimable only while no earlier one of the same endpoint and subject is still
queued. A result is written only while the claim that sent it still holds the row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.orm import aliased

from mailflow.store.database import Database, Transaction, after_commit
from mailflow.store.listings import Listing
from mailflow.store.models import (
    Listing as ListingRow,
)
from mailflow.store.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    table,
)

QUEUED = "queued"
DELIVERED = "delivered"
FAILED = "failed"
"""Given up: every retry failed until ``give_up_after_hours``, or the endpoint answered 410."""

_endpoints = table(WebhookEndpoint)
_events = table(WebhookEvent)
_deliveries = table(WebhookDelivery)
_attempts = table(WebhookAttempt)
_listings = table(ListingRow)


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    id: int
    url: str
    description: str
    events: list[str]
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    active: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    at: datetime
    outcome: str
    status_code: int | None
    duration_ms: int
    error: str | None
    response: str


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    endpoint_id: int
    event_id: str
    type: str
    subject: str
    sequence: int
    status: str
    attempts: int
    next_attempt_at: datetime
    queued_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    body: bytes
    history: list[AttemptRecord]


def _endpoint(row: Any) -> EndpointRecord:
    values = dict(row._mapping)
    values["events"] = json.loads(values["events"])
    return EndpointRecord(**values)


_ENDPOINT_COLUMNS = [_endpoints.c[f] for f in EndpointRecord.__slots__]


# --- endpoints -------------------------------------------------------------------------------


def add_endpoint(
    tx: Transaction, url: str, description: str, events: list[str], secret: str, at: datetime
) -> EndpointRecord:
    row_id = tx.execute(
        insert(_endpoints)
        .values(
            url=url,
            description=description,
            events=json.dumps(events),
            secret=secret,
            active=True,
            created_at=at,
        )
        .returning(_endpoints.c.id)
    ).scalar_one()
    found = endpoint(tx, int(row_id))
    assert found is not None
    return found


def endpoint(tx: Transaction, endpoint_id: int) -> EndpointRecord | None:
    row = tx.execute(select(*_ENDPOINT_COLUMNS).where(_endpoints.c.id == endpoint_id)).first()
    return None if row is None else _endpoint(row)


def endpoints(tx: Transaction) -> list[EndpointRecord]:
    rows = tx.execute(select(*_ENDPOINT_COLUMNS).order_by(_endpoints.c.id)).all()
    return [_endpoint(row) for row in rows]


def delete_endpoint(tx: Transaction, endpoint_id: int) -> bool:
    """The endpoint, its deliveries and their attempts (the events stay, for other
    endpoints)."""
    mine = select(_deliveries.c.id).where(_deliveries.c.endpoint_id == endpoint_id)
    tx.execute(delete(_attempts).where(_attempts.c.delivery_id.in_(mine.scalar_subquery())))
    tx.execute(delete(_deliveries).where(_deliveries.c.endpoint_id == endpoint_id))
    gone = tx.execute(delete(_endpoints).where(_endpoints.c.id == endpoint_id))
    return bool(gone.rowcount)  # type: ignore[attr-defined]


def rotate_secret(
    tx: Transaction, endpoint_id: int, secret: str, previous_until: datetime | None
) -> EndpointRecord | None:
    """The new secret signs; the one it replaces signs too until ``previous_until``."""
    tx.execute(
        update(_endpoints)
        .where(_endpoints.c.id == endpoint_id)
        .values(
            previous_secret=_endpoints.c.secret if previous_until is not None else None,
            previous_secret_until=previous_until,
            secret=secret,
        )
    )
    return endpoint(tx, endpoint_id)


def set_active(
    tx: Transaction, endpoint_id: int, active: bool, reason: str | None, at: datetime
) -> EndpointRecord | None:
    values: dict[str, Any] = {"active": active, "disabled_reason": reason}
    values["disabled_at"] = None if active else at
    if active:
        values["failing_since"] = None
    tx.execute(update(_endpoints).where(_endpoints.c.id == endpoint_id).values(**values))
    return endpoint(tx, endpoint_id)


_SUBSCRIBERS = "mailflow.webhooks.subscribers"


def subscribers(tx: Transaction) -> list[tuple[int, list[str]]]:
    """The active endpoints and the event types each takes, read once per transaction."""
    cached: list[tuple[int, list[str]]] | None = tx.info.get(_SUBSCRIBERS)
    if cached is None:
        rows = tx.execute(
            select(_endpoints.c.id, _endpoints.c.events).where(_endpoints.c.active.is_(True))
        ).all()
        cached = tx.info[_SUBSCRIBERS] = [(row.id, json.loads(row.events)) for row in rows]
    return cached


# --- events and deliveries --------------------------------------------------------------------


def next_sequence(tx: Transaction, subject: str) -> int:
    last = tx.execute(
        select(func.max(_events.c.sequence)).where(_events.c.subject == subject)
    ).scalar()
    return int(last or 0) + 1


def add_event(
    tx: Transaction,
    *,
    event_id: str,
    type_: str,
    subject: str,
    sequence: int,
    body: bytes,
    at: datetime,
    endpoint_ids: Iterable[int],
) -> int:
    """The event and one queued delivery per endpoint; wakes the worker after the commit."""
    row_id = int(
        tx.execute(
            insert(_events)
            .values(
                event_id=event_id,
                type=type_,
                subject=subject,
                sequence=sequence,
                body=body,
                created_at=at,
            )
            .returning(_events.c.id)
        ).scalar_one()
    )
    rows = [
        {
            "endpoint_id": endpoint_id,
            "event_id": row_id,
            "subject": subject,
            "sequence": sequence,
            "status": QUEUED,
            "attempts": 0,
            "next_attempt_at": at,
            "queued_at": at,
        }
        for endpoint_id in endpoint_ids
    ]
    if rows:
        tx.execute(insert(_deliveries), rows)
        after_commit(tx).wake_webhooks = True
    return row_id


def wake_worker(tx: Transaction) -> None:
    """Deliveries may have become claimable: wake the worker once ``tx`` commits."""
    after_commit(tx).wake_webhooks = True


def listing(tx: Transaction, listing_id: int) -> Listing | None:
    c = _listings.c
    row = tx.execute(
        select(c.seller_id, c.sku, c.title, c.stock, c.active, c.updated_at).where(
            c.id == listing_id
        )
    ).first()
    return None if row is None else Listing(*row)


_DELIVERY_COLUMNS = (
    _deliveries.c.id,
    _deliveries.c.endpoint_id,
    _events.c.event_id,
    _events.c.type,
    _deliveries.c.subject,
    _deliveries.c.sequence,
    _deliveries.c.status,
    _deliveries.c.attempts,
    _deliveries.c.next_attempt_at,
    _deliveries.c.queued_at,
    _deliveries.c.delivered_at,
    _deliveries.c.last_status,
    _deliveries.c.last_error,
    _events.c.body,
)


def _history(tx: Transaction, delivery_ids: list[int]) -> dict[int, list[AttemptRecord]]:
    found: dict[int, list[AttemptRecord]] = {i: [] for i in delivery_ids}
    if not delivery_ids:
        return found
    a = _attempts.c
    rows = tx.execute(
        select(a.delivery_id, a.at, a.outcome, a.status_code, a.duration_ms, a.error, a.response)
        .where(a.delivery_id.in_(delivery_ids))
        .order_by(a.id)
    ).all()
    for row in rows:
        found[row.delivery_id].append(AttemptRecord(*row[1:]))
    return found


def deliveries(
    tx: Transaction, endpoint_id: int | None = None, *, limit: int = 100, status: str | None = None
) -> list[DeliveryRecord]:
    """The newest deliveries (of one endpoint, or of all), each with its attempts."""
    query = select(*_DELIVERY_COLUMNS).join(_events, _events.c.id == _deliveries.c.event_id)
    if endpoint_id is not None:
        query = query.where(_deliveries.c.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(_deliveries.c.status == status)
    rows = tx.execute(query.order_by(_deliveries.c.id.desc()).limit(limit)).all()
    history = _history(tx, [row.id for row in rows])
    return [DeliveryRecord(**dict(row._mapping), history=history[row.id]) for row in rows]


def delivery(tx: Transaction, delivery_id: int) -> DeliveryRecord | None:
    row = tx.execute(
        select(*_DELIVERY_COLUMNS)
        .join(_events, _events.c.id == _deliveries.c.event_id)
        .where(_deliveries.c.id == delivery_id)
    ).first()
    if row is None:
        return None
    return DeliveryRecord(**dict(row._mapping), history=_history(tx, [row.id])[row.id])


def replay(tx: Transaction, delivery_id: int, at: datetime) -> bool:
    """Queue the delivery again, due now, with the same event and ``webhook-id``; its give-up
    time counts from now. A claim in flight is dropped with its result: the delivery is sent
    again either way. It keeps its place in its subject's order."""
    changed = tx.execute(
        update(_deliveries)
        .where(_deliveries.c.id == delivery_id)
        .values(status=QUEUED, next_attempt_at=at, queued_at=at, lease_until=None)
    )
    if changed.rowcount:  # type: ignore[attr-defined]
        after_commit(tx).wake_webhooks = True
    return bool(changed.rowcount)  # type: ignore[attr-defined]


def counts(tx: Transaction) -> dict[str, int]:
    rows = tx.execute(
        select(_deliveries.c.status, func.count()).group_by(_deliveries.c.status)
    ).all()
    return {status: int(n) for status, n in rows}


# --- the worker --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    endpoint_id: int
    url: str
    secrets: list[str]
    """The endpoint's secret, and the one before it while the rotation's overlap lasts."""
    webhook_id: str
    body: bytes
    attempts: int
    queued_at: datetime
    lease_until: datetime
    """Also the claim's token: a result is written only while the row still holds it."""


@dataclass(frozen=True, slots=True)
class Result:
    id: int
    endpoint_id: int
    lease_until: datetime
    outcome: str
    """``delivered``; ``retry`` (``next_attempt_at`` set); ``failed`` (given up); ``gone``
    (410: given up and the endpoint disabled)."""
    at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    response: str = ""
    next_attempt_at: datetime | None = None


def _first_in_line() -> list[Any]:
    """Queued, for an active endpoint, and with no earlier queued delivery of the same
    endpoint and subject (strict ``sequence`` order)."""
    d = _deliveries.c
    earlier = aliased(_deliveries)
    return [
        d.status == QUEUED,
        _endpoints.c.active.is_(True),
        ~exists().where(
            and_(
                earlier.c.endpoint_id == d.endpoint_id,
                earlier.c.subject == d.subject,
                earlier.c.sequence < d.sequence,
                earlier.c.status == QUEUED,
            )
        ),
    ]


@lru_cache(maxsize=8)
def _claim_statement(limit: int, skip_locked: bool) -> Any:
    d = _deliveries.c
    now: Any = bindparam("b_now")
    due = (
        select(d.id)
        .join(_endpoints, _endpoints.c.id == d.endpoint_id)
        .where(
            *_first_in_line(),
            d.next_attempt_at <= now,
            or_(d.lease_until.is_(None), d.lease_until < now),
        )
        .order_by(d.next_attempt_at, d.id)
        .limit(limit)
    )
    if skip_locked:
        due = due.with_for_update(of=_deliveries, skip_locked=True)
    return (
        update(_deliveries)
        .where(d.id.in_(due.scalar_subquery()))
        .values(lease_until=bindparam("b_lease_until"), attempts=d.attempts + 1)
        .returning(d.id, d.endpoint_id, d.event_id, d.attempts, d.queued_at, d.lease_until)
    )


Notice = Callable[[Transaction, EndpointRecord], None]
"""Run in the transaction that disabled an endpoint (the worker queues an email to support)."""


class WebhookStore:
    def __init__(self, db: Database, lease_seconds: float, disable_after_hours: float) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self.disable_after = timedelta(hours=disable_after_hours)

    def claim(self, limit: int, now: datetime) -> list[Claimed]:
        statement = _claim_statement(limit, not self.db.is_sqlite)
        with self.db.transaction() as tx:
            rows = tx.execute(statement, {"b_now": now, "b_lease_until": now + self.lease}).all()
            if not rows:
                return []
            events = {
                row.id: (row.event_id, row.body)
                for row in tx.execute(
                    select(_events.c.id, _events.c.event_id, _events.c.body).where(
                        _events.c.id.in_([r.event_id for r in rows])
                    )
                )
            }
            targets = {
                e.id: e for e in (endpoint(tx, i) for i in {r.endpoint_id for r in rows}) if e
            }
        claimed = []
        for row in rows:
            target = targets[row.endpoint_id]
            keys = [target.secret]
            until = target.previous_secret_until
            if target.previous_secret and until is not None and _aware(until) > now:
                keys.append(target.previous_secret)
            webhook_id, body = events[row.event_id]
            claimed.append(
                Claimed(
                    row.id,
                    row.endpoint_id,
                    target.url,
                    keys,
                    webhook_id,
                    body,
                    row.attempts,
                    _aware(row.queued_at),
                    row.lease_until,
                )
            )
        return sorted(claimed, key=lambda c: c.id)

    def record(self, results: Iterable[Result], notice: Notice) -> None:
        """Write each result (only while its claim still holds the row), its attempt, and
        what it says of the endpoint: a success ends its failing spell; a 410, or failing
        for ``disable_after_hours``, disables it (``notice`` runs in that transaction)."""
        with self.db.transaction() as tx:
            for r in results:
                status = {"delivered": DELIVERED, "retry": QUEUED}.get(r.outcome, FAILED)
                values: dict[str, Any] = {
                    "status": status,
                    "lease_until": None,
                    "last_status": r.status_code,
                    "last_error": r.error,
                }
                if r.outcome == "delivered":
                    values["delivered_at"] = r.at
                if r.next_attempt_at is not None:
                    values["next_attempt_at"] = r.next_attempt_at
                changed = tx.execute(
                    update(_deliveries)
                    .where(
                        _deliveries.c.id == r.id,
                        _deliveries.c.status == QUEUED,
                        _deliveries.c.lease_until == r.lease_until,
                    )
                    .values(**values)
                )
                if not changed.rowcount:  # type: ignore[attr-defined]
                    continue  # replayed, deleted, or claimed again after the lease ran out
                tx.execute(
                    insert(_attempts).values(
                        delivery_id=r.id,
                        at=r.at,
                        outcome=r.outcome,
                        status_code=r.status_code,
                        duration_ms=r.duration_ms,
                        error=r.error,
                        response=r.response,
                    )
                )
                self._endpoint_after(tx, r, notice)

    def _endpoint_after(self, tx: Transaction, r: Result, notice: Notice) -> None:
        e = _endpoints.c
        if r.outcome == "delivered":
            tx.execute(
                update(_endpoints)
                .where(e.id == r.endpoint_id, e.failing_since.is_not(None))
                .values(failing_since=None)
            )
            return
        reason = None
        if r.outcome == "gone":
            reason = "the endpoint answered 410 Gone"
        else:
            tx.execute(
                update(_endpoints)
                .where(e.id == r.endpoint_id, e.failing_since.is_(None))
                .values(failing_since=r.at)
            )
            found = endpoint(tx, r.endpoint_id)
            since = found.failing_since if found is not None else None
            if since is not None and r.at - _aware(since) >= self.disable_after:
                reason = f"every delivery failed since {_aware(since).isoformat()}"
        if reason is None:
            return
        disabled = tx.execute(
            update(_endpoints)
            .where(e.id == r.endpoint_id, e.active.is_(True))
            .values(active=False, disabled_reason=reason, disabled_at=r.at)
        )
        if disabled.rowcount:  # type: ignore[attr-defined]
            found = endpoint(tx, r.endpoint_id)
            assert found is not None
            notice(tx, found)

    def release(self, claimed: Iterable[Claimed]) -> None:
        """Give claimed rows back at once (a clean stop), without waiting for the lease."""
        claimed = list(claimed)
        if not claimed:
            return
        with self.db.transaction() as tx:
            for item in claimed:
                tx.execute(
                    update(_deliveries)
                    .where(
                        _deliveries.c.id == item.id,
                        _deliveries.c.status == QUEUED,
                        _deliveries.c.lease_until == item.lease_until,
                    )
                    .values(lease_until=None, attempts=_deliveries.c.attempts - 1)
                )

    def next_due(self) -> datetime | None:
        """When the next delivery may be claimed (of those first in line: a later one of
        a subject waits for its predecessor, not for a time)."""
        d = _deliveries.c
        with self.db.read() as tx:
            rows = tx.execute(
                select(d.next_attempt_at, d.lease_until)
                .join(_endpoints, _endpoints.c.id == d.endpoint_id)
                .where(*_first_in_line())
                .order_by(d.next_attempt_at)
                .limit(1000)
            ).all()
        times = [_aware(max(n, lease) if lease is not None else n) for n, lease in rows]
        return min(times, default=None)


def _aware(value: datetime) -> datetime:
    """SQLite hands times back naive; they are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
