"""Orders in the database: the intake's statements (buyer, listing, order, sale, payment) and
the look-ups that answer a repeated order.

Order intake is a hot path: its statements are built once and run on the DB-API cursor
(``store._direct``); the buyer and the listing are made with ``INSERT … ON CONFLICT DO
NOTHING`` so that concurrent orders meet at the unique constraints, not in a read-then-write.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from mailflow.store import _direct as direct
from mailflow.store.database import Transaction
from mailflow.store.models import Buyer, Listing, Order, Payment, Sale
from mailflow.store.records import BuyerRecord, PaymentRecord


class DuplicateOrder(Exception):
    """An order with this ``external_id`` or ``Idempotency-Key`` is there already (perhaps
    committed by a concurrent request a moment ago); the transaction is lost."""


@dataclass(frozen=True, slots=True)
class StoredOrder:
    id: int
    external_id: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class SaleLine:
    """A sale as the order's answer shows it."""

    id: int
    seller_id: int
    status: str


@dataclass(frozen=True, slots=True)
class ListingRecord:
    id: int
    active: bool


_buyers, _orders = Buyer.__table__, Order.__table__
_listings, _sales = Listing.__table__, Sale.__table__
_BUYER = select(_buyers.c.id, _buyers.c.name, _buyers.c.email, _buyers.c.locale).where(
    _buyers.c.email == bindparam("b_email")
)
_RENAME_BUYER = (
    update(_buyers)
    .where(_buyers.c.id == bindparam("b_id"))
    .values(name=bindparam("b_name"), locale=bindparam("b_locale"))
)
_LISTING = select(_listings.c.id, _listings.c.active).where(
    _listings.c.seller_id == bindparam("b_seller"), _listings.c.sku == bindparam("b_sku")
)
_INSERT_ORDER = insert(_orders).returning(_orders.c.id)
_INSERT_SALE = insert(_sales).returning(_sales.c.id)
_INSERT_PAYMENT = insert(Payment.__table__)
_PAYMENT_FIELDS = tuple(f.name for f in fields(PaymentRecord))
_ORDER_COLUMNS = (_orders.c.id, _orders.c.external_id, _orders.c.request_hash)


@lru_cache(maxsize=8)
def _insert_ignore(dialect: str, table: Any, keys: tuple[str, ...], *returning: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING …`` (built once): no row back if it was
    there."""
    insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert_of(table).on_conflict_do_nothing(index_elements=keys)
    return statement.returning(*(table.c[name] for name in returning))


def by_idempotency_key(tx: Transaction, key: str) -> StoredOrder | None:
    row = tx.execute(select(*_ORDER_COLUMNS).where(_orders.c.idempotency_key == key)).first()
    return None if row is None else StoredOrder(*row)


def by_external_id(tx: Transaction, external_id: str) -> StoredOrder | None:
    row = tx.execute(select(*_ORDER_COLUMNS).where(_orders.c.external_id == external_id)).first()
    return None if row is None else StoredOrder(*row)


def sales_of(tx: Transaction, order_id: int) -> list[SaleLine]:
    rows = tx.execute(
        select(_sales.c.id, _sales.c.seller_id, _sales.c.status)
        .where(_sales.c.order_id == order_id)
        .order_by(_sales.c.id)
    )
    return [SaleLine(*row) for row in rows]


def buyer(tx: Transaction, email: str, name: str, locale: str, now: datetime) -> BuyerRecord:
    """The buyer by email, made if new; name and locale follow the latest order."""
    conn = direct.connection(tx)
    row = conn.execute(_BUYER, {"b_email": email}).first()
    if row is None:
        values = {"email": email, "name": name, "locale": locale}
        statement = _insert_ignore(conn.dialect.name, _buyers, ("email",), "id")
        made = conn.execute(statement, {**values, "created_at": now}).first()
        if made is not None:
            return BuyerRecord(made.id, name, email, locale)
        row = conn.execute(_BUYER, {"b_email": email}).one()  # a concurrent order made it
    if (row.name, row.locale) != (name, locale):
        conn.execute(_RENAME_BUYER, {"b_id": row.id, "b_name": name, "b_locale": locale})
    return BuyerRecord(row.id, name, row.email, locale)


def listing(tx: Transaction, seller_id: int, sku: str, title: str, now: datetime) -> ListingRecord:
    """The seller's listing of ``sku``, made (on sale) if new."""
    conn = direct.connection(tx)
    row = conn.execute(_LISTING, {"b_seller": seller_id, "b_sku": sku}).first()
    if row is None:
        keys = ("seller_id", "sku")
        statement = _insert_ignore(conn.dialect.name, _listings, keys, "id", "active")
        values = {"seller_id": seller_id, "sku": sku, "title": title, "active": True}
        row = conn.execute(statement, {**values, "updated_at": now}).first()
        if row is None:  # a concurrent order made it
            row = conn.execute(_LISTING, {"b_seller": seller_id, "b_sku": sku}).one()
    return ListingRecord(row.id, row.active)


def insert_order(tx: Transaction, values: dict[str, Any]) -> int:
    """The new order's id; ``DuplicateOrder`` if its external_id or key is taken."""
    try:
        return int(direct.connection(tx).execute(_INSERT_ORDER, values).scalar_one())
    except IntegrityError as exc:
        raise DuplicateOrder(str(exc.orig)) from exc


def insert_sale(tx: Transaction, values: dict[str, Any]) -> int:
    return int(direct.connection(tx).execute(_INSERT_SALE, values).scalar_one())


def insert_payment(tx: Transaction, payment: PaymentRecord) -> None:
    values = {name: getattr(payment, name) for name in _PAYMENT_FIELDS}
    direct.connection(tx).execute(_INSERT_PAYMENT, values)
