"""Sales in the database: a sale with its parties in one read, the compare-and-set of a
transition, its history line, its payment, and the sweeper's look-ups.

The hot paths (an order, a click on an email link) read the sale with its seller, order, buyer
and payment in one round trip and then write with plain statements compiled once and run on
the DB-API cursor (``store._direct``); nothing is read twice.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import LABEL_STYLE_TABLENAME_PLUS_COL, bindparam, insert, or_, select, update

from mailflow.domain.sales import SaleStatus
from mailflow.store import _direct as direct
from mailflow.store.database import Transaction
from mailflow.store.models import Buyer, Listing, Order, Payment, Sale, SaleEvent, Seller
from mailflow.store.records import (
    BuyerRecord,
    EventRecord,
    OrderRecord,
    PaymentRecord,
    SaleFacts,
    SaleRecord,
    SellerRecord,
)

_sales, _sellers, _orders = Sale.__table__, Seller.__table__, Order.__table__
_buyers, _payments = Buyer.__table__, Payment.__table__
_events, _listings = SaleEvent.__table__, Listing.__table__

# One record type per part of the read, built positionally: its fields are its columns.
_PART_TYPES = (SaleRecord, SellerRecord, OrderRecord, BuyerRecord, PaymentRecord)
_PART_TABLES = (_sales, _sellers, _orders, _buyers, _payments)
_PARTS = tuple(
    [table.c[f.name] for f in fields(kind)]
    for kind, table in zip(_PART_TYPES, _PART_TABLES, strict=True)
)
for _kind, _table in zip(_PART_TYPES, _PART_TABLES, strict=True):
    # Whole-row records must follow the table's column order (rows are unpacked into them).
    if len(fields(_kind)) == len(_table.c):
        assert [f.name for f in fields(_kind)] == list(_table.c.keys()), _kind
_SPANS = []
_start = 0
for _columns in _PARTS:
    _SPANS.append((_start, _start + len(_columns)))
    _start += len(_columns)

_BY_SALE = (
    select(*(c for columns in _PARTS for c in columns))
    .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
    .select_from(
        _sales.join(_orders, _orders.c.id == _sales.c.order_id)
        .join(_buyers, _buyers.c.id == _orders.c.buyer_id)
        .join(_sellers, _sellers.c.id == _sales.c.seller_id)
        .outerjoin(_payments, _payments.c.sale_id == _sales.c.id)
    )
    .where(_sales.c.id == bindparam("sale_id"))
)
_SELLER = select(_sellers).where(_sellers.c.id == bindparam("seller_id"))
_SELLERS = select(_sellers).where(_sellers.c.id.in_(bindparam("b_ids", expanding=True)))
_SALE = select(_sales).where(_sales.c.id == bindparam("b_id"))
_PAYMENT = select(_payments).where(_payments.c.sale_id == bindparam("b_id"))
_EVENT_COLUMNS = [_events.c[f.name] for f in fields(EventRecord)]
_HISTORY = (
    select(*_EVENT_COLUMNS).where(_events.c.sale_id == bindparam("b_id")).order_by(_events.c.id)
)
_LAST_EVENT = (
    select(*_EVENT_COLUMNS)
    .where(_events.c.sale_id == bindparam("b_id"))
    .order_by(_events.c.id.desc())
    .limit(1)
)

_INSERT_EVENT = insert(_events)
PAYMENT_CHANGES = ("state", "refunded_cents", "commission_cents", "payout_cents", "updated_at")
_UPDATE_PAYMENT = (
    update(_payments)
    .where(_payments.c.sale_id == bindparam("b_sale_id"))
    .values({name: bindparam(name) for name in PAYMENT_CHANGES})
)
_LISTING_OFF_SALE = (
    update(_listings)
    .where(_listings.c.id == bindparam("b_id"))
    .values(stock=0, active=False, updated_at=bindparam("b_at"))
)


def facts(tx: Transaction, sale_id: int) -> SaleFacts | None:
    """The sale with its seller, order, buyer and payment, in one statement."""
    row = direct.connection(tx).execute(_BY_SALE, {"sale_id": sale_id}).first()
    if row is None:
        return None
    sale, seller, order, buyer, payment = (
        kind(*row[start:end]) for kind, (start, end) in zip(_PART_TYPES, _SPANS, strict=True)
    )
    return SaleFacts(sale, seller, order, buyer, None if payment.sale_id is None else payment)


def seller(tx: Transaction, seller_id: int) -> SellerRecord | None:
    row = direct.connection(tx).execute(_SELLER, {"seller_id": seller_id}).first()
    return None if row is None else SellerRecord(*row)


def sellers(tx: Transaction, seller_ids: list[int]) -> dict[int, SellerRecord]:
    """Sellers by id, in one statement; an ``IN`` list (which ``store._direct`` leaves to
    SQLAlchemy) only for several."""
    conn = direct.connection(tx)
    if len(seller_ids) == 1:
        rows = conn.execute(_SELLER, {"seller_id": seller_ids[0]})
    else:
        rows = conn.execute(_SELLERS, {"b_ids": seller_ids})
    return {row.id: SellerRecord(*row) for row in rows}


def sale(tx: Transaction, sale_id: int) -> SaleRecord | None:
    row = direct.connection(tx).execute(_SALE, {"b_id": sale_id}).first()
    return None if row is None else SaleRecord(*row)


def payment(tx: Transaction, sale_id: int) -> PaymentRecord | None:
    row = direct.connection(tx).execute(_PAYMENT, {"b_id": sale_id}).first()
    return None if row is None else PaymentRecord(*row)


def history(tx: Transaction, sale_id: int) -> list[EventRecord]:
    """The sale's events, oldest first."""
    return [EventRecord(*row) for row in direct.connection(tx).execute(_HISTORY, {"b_id": sale_id})]


def last_event(tx: Transaction, sale_id: int) -> EventRecord | None:
    row = direct.connection(tx).execute(_LAST_EVENT, {"b_id": sale_id}).first()
    return None if row is None else EventRecord(*row)


@lru_cache(maxsize=64)
def _cas(columns: tuple[str, ...], sources: tuple[str, ...]) -> Any:
    """The compare-and-set from ``sources`` that writes ``columns``, built once: executing it
    again costs no statement building, cache-key computation or IN-list expansion."""
    return (
        update(_sales)
        .where(
            _sales.c.id == bindparam("b_id"),
            or_(*(_sales.c.status == source for source in sources)),
        )
        .values({name: bindparam(name) for name in columns})
    )


def change_if(
    tx: Transaction, sale_id: int, sources: tuple[str, ...], values: dict[str, Any]
) -> bool:
    """Write ``values`` to the sale if its status is one of ``sources`` (sorted, so that one
    statement serves each set); whether it was."""
    statement = _cas(tuple(values), sources)
    return bool(direct.connection(tx).execute(statement, {**values, "b_id": sale_id}).rowcount)


def insert_event(
    tx: Transaction,
    sale_id: int,
    action: str,
    source: str | None,
    target: str,
    actor: str,
    channel: str,
    at: datetime,
    *,
    reason: str | None = None,
    note: str | None = None,
) -> None:
    """One line of the sale's history (``source`` is None for its creation)."""
    direct.connection(tx).execute(
        _INSERT_EVENT,
        {
            "sale_id": sale_id,
            "action": action,
            "from_status": source,
            "to_status": target,
            "actor": actor,
            "channel": channel,
            "reason": reason,
            "note": note,
            "at": at,
        },
    )


def update_payment(tx: Transaction, sale_id: int, values: dict[str, Any]) -> None:
    """Write the payment's ``PAYMENT_CHANGES`` (all of them)."""
    direct.connection(tx).execute(_UPDATE_PAYMENT, {**values, "b_sale_id": sale_id})


def take_listing_off_sale(tx: Transaction, listing_id: int, at: datetime) -> None:
    direct.connection(tx).execute(_LISTING_OFF_SALE, {"b_id": listing_id, "b_at": at})


# --- the sweeper ---------------------------------------------------------------------------


def pending_created_before(tx: Transaction, cutoff: datetime, limit: int) -> list[int]:
    """Pending sales created at or before ``cutoff``, oldest first."""
    return list(
        tx.execute(
            select(Sale.id)
            .where(Sale.status == SaleStatus.PENDING.value, Sale.created_at <= cutoff)
            .order_by(Sale.created_at)
            .limit(limit)
        ).scalars()
    )


def due_reminders(
    tx: Transaction, created_from: datetime, created_to: datetime, limit: int
) -> list[int]:
    """Pending, unreminded sales created in (``created_from``, ``created_to``], oldest first."""
    return list(
        tx.execute(
            select(Sale.id)
            .where(
                Sale.status == SaleStatus.PENDING.value,
                Sale.reminder_sent_at.is_(None),
                Sale.created_at <= created_to,
                Sale.created_at > created_from,
            )
            .order_by(Sale.created_at)
            .limit(limit)
        ).scalars()
    )


def claim_reminder(tx: Transaction, sale_id: int, now: datetime) -> bool:
    """Mark the pending sale reminded, unless another sweeper did (compare-and-set)."""
    won = tx.execute(
        update(_sales)
        .where(
            _sales.c.id == sale_id,
            _sales.c.reminder_sent_at.is_(None),
            _sales.c.status == SaleStatus.PENDING.value,
        )
        .values(reminder_sent_at=now)
    ).rowcount
    return bool(won)
