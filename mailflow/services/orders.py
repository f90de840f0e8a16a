"""Orders in: one sale per item, each announced to its seller by email.

Idempotent on ``external_id`` and on the ``Idempotency-Key`` header: a repeat returns the
first result and queues nothing. Two identical requests racing meet at the unique
constraints; the loser reads the winner's order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from mailflow.domain.events import SaleCreated
from mailflow.domain.money import PaymentState
from mailflow.domain.sales import Actor, Channel, SaleStatus
from mailflow.schemas import OrderIn
from mailflow.services import facts, notify, policy, sales
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict, InvalidInput
from mailflow.services.facts import Record, SaleFacts
from mailflow.store import direct
from mailflow.store.direct import Direct
from mailflow.store.models import Buyer, Listing, Order, Payment, Sale


@dataclass(frozen=True)
class OrderResult:
    body: dict[str, Any]
    created: bool


def _request_hash(data: OrderIn) -> str:
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _result(session: Session, order: Order) -> dict[str, Any]:
    rows = session.execute(
        select(Sale.id, Sale.seller_id, Sale.status)
        .where(Sale.order_id == order.id)
        .order_by(Sale.id)
    ).all()
    return _body(order, rows)


def _body(order: Any, sales_of_order: Any) -> dict[str, Any]:
    """The API's answer: ``order`` and its sales, models, rows or ``Record``s."""
    return {
        "order_id": order.id,
        "external_id": order.external_id,
        "sales": [
            {"id": s.id, "seller_id": s.seller_id, "status": s.status} for s in sales_of_order
        ],
    }


def _existing(session: Session, data: OrderIn, key: str | None, digest: str) -> Order | None:
    if key is not None:
        order = session.execute(select(Order).where(Order.idempotency_key == key)).scalar()
        if order is not None:
            if order.request_hash != digest:
                raise Conflict(
                    "this Idempotency-Key was used for a different request",
                    code="idempotency_key_reused",
                )
            return order
    return session.execute(select(Order).where(Order.external_id == data.external_id)).scalar()


def place_order(ctx: ServiceContext, data: OrderIn, idempotency_key: str | None) -> OrderResult:
    digest = _request_hash(data)
    try:
        return _place(ctx, data, idempotency_key, digest)
    except IntegrityError:
        # A concurrent request with the same external_id or key committed first.
        with ctx.db.read() as session:
            order = _existing(session, data, idempotency_key, digest)
            if order is None:
                raise
            return OrderResult(_result(session, order), created=False)


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


@lru_cache(maxsize=8)
def _insert_ignore(dialect: str, table: Any, keys: tuple[str, ...], *returning: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING …`` (built once): no row back if it was
    there."""
    insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert_of(table).on_conflict_do_nothing(index_elements=keys)
    return statement.returning(*(table.c[name] for name in returning))


def _place(ctx: ServiceContext, data: OrderIn, key: str | None, digest: str) -> OrderResult:
    # No look-up of an earlier order first: a repeat (same external_id or Idempotency-Key)
    # fails the order's INSERT on its unique constraint, before anything is checked or
    # queued, and ``place_order`` answers it from the order already there.
    with ctx.db.transaction() as session:
        conn = direct.connection(session)
        now = ctx.clock()
        seller_ids = sorted({item.seller_id for item in data.items})
        sellers = facts.sellers(conn, seller_ids)
        buyer = _buyer(conn, data, now)
        order_values = {
            "external_id": data.external_id,
            "idempotency_key": key,
            "request_hash": digest,
            "buyer_id": buyer.id,
            "currency": data.currency,
            "created_at": now,
        }
        order = Record(id=conn.execute(_INSERT_ORDER, order_values).scalar_one(), **order_values)

        for index, item in enumerate(data.items):
            seller = sellers.get(item.seller_id)
            if seller is None:
                raise InvalidInput(f"items.{index}.seller_id", f"no seller {item.seller_id}")
            if seller.suspended_until is not None and seller.suspended_until > now:
                raise Conflict(
                    f"seller {seller.id} is suspended until {seller.suspended_until.isoformat()}",
                    code="seller_suspended",
                )

        made = []
        for index, item in enumerate(data.items):
            listing = _listing(conn, item.seller_id, item.sku, item.title, now)
            if not listing.active:
                raise Conflict(
                    f"items.{index}: listing {item.sku!r} of seller {item.seller_id} "
                    "is not on sale",
                    code="listing_unavailable",
                )
            unit = int(item.unit_price * 100)
            sale_values = {
                "order_id": order.id,
                "seller_id": item.seller_id,
                "listing_id": listing.id,
                "sku": item.sku,
                "title": item.title,
                "quantity": item.quantity,
                "unit_price_cents": unit,
                "amount_cents": unit * item.quantity,
                "currency": data.currency,
                "status": SaleStatus.PENDING.value,
                "created_at": now,
                "updated_at": now,
            }
            sale_id = conn.execute(_INSERT_SALE, sale_values).scalar_one()
            sale = Record(id=sale_id, reason=None, message=None, **sale_values)
            payment = Record(
                sale_id=sale_id,
                state=PaymentState.AUTHORIZED.value,
                amount_cents=sale.amount_cents,
                refunded_cents=0,
                commission_cents=0,
                payout_cents=0,
                currency=sale.currency,
                updated_at=now,
            )
            conn.execute(_INSERT_PAYMENT, vars(payment))
            sales.insert_event(
                conn, sale_id, "create", None, SaleStatus.PENDING.value, Actor.API, Channel.API, now
            )
            about = SaleFacts(sale, sellers[item.seller_id], order, buyer, payment)
            notify.sale_created(ctx, session, about, SaleCreated(sale_id, now))
            made.append(sale)
        for seller_id in seller_ids:
            # A new sale grows the denominator (and may cross min_sales).
            policy.evaluate(ctx, session, seller_id, sellers[seller_id])
        return OrderResult(_body(order, made), created=True)


def _buyer(conn: Direct, data: OrderIn, now: Any) -> Record:
    """The buyer by email, made if new; name and locale follow the latest order."""
    email = data.buyer.email
    row = conn.execute(_BUYER, {"b_email": email}).first()
    if row is None:
        values = {"email": email, "name": data.buyer.name, "locale": data.buyer.locale}
        statement = _insert_ignore(conn.dialect.name, _buyers, ("email",), "id")
        made = conn.execute(statement, {**values, "created_at": now}).first()
        if made is not None:
            return Record(id=made.id, **values)
        row = conn.execute(_BUYER, {"b_email": email}).one()  # a concurrent order made it
    buyer = facts.record(row)
    if (buyer.name, buyer.locale) != (data.buyer.name, data.buyer.locale):
        conn.execute(
            _RENAME_BUYER,
            {"b_id": buyer.id, "b_name": data.buyer.name, "b_locale": data.buyer.locale},
        )
        buyer.name, buyer.locale = data.buyer.name, data.buyer.locale
    return buyer


def _listing(conn: Direct, seller_id: int, sku: str, title: str, now: Any) -> Record:
    """The seller's listing of ``sku``, made (on sale) if new."""
    row = conn.execute(_LISTING, {"b_seller": seller_id, "b_sku": sku}).first()
    if row is None:
        keys = ("seller_id", "sku")
        statement = _insert_ignore(conn.dialect.name, _listings, keys, "id", "active")
        values = {"seller_id": seller_id, "sku": sku, "title": title, "active": True}
        row = conn.execute(statement, {**values, "updated_at": now}).first()
        if row is None:  # a concurrent order made it
            row = conn.execute(_LISTING, {"b_seller": seller_id, "b_sku": sku}).one()
    return facts.record(row)
