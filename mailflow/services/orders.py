"""Orders in: one sale per item, each announced to its seller by email.

Idempotent on ``external_id`` and on the ``Idempotency-Key`` header: a repeat returns the
first result and queues nothing. Two identical requests racing meet at the unique
constraints; the loser reads the winner's order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from mailflow.domain.events import SaleCreated
from mailflow.domain.sales import Actor, Channel, SaleStatus
from mailflow.schemas import OrderIn
from mailflow.services import notify, policy
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict, InvalidInput
from mailflow.store.models import Buyer, Listing, Order, Payment, Sale, SaleEvent, Seller


@dataclass(frozen=True)
class OrderResult:
    body: dict[str, Any]
    created: bool


def _request_hash(data: OrderIn) -> str:
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _result(session: Session, order: Order) -> dict[str, Any]:
    sales = session.execute(
        select(Sale.id, Sale.seller_id, Sale.status)
        .where(Sale.order_id == order.id)
        .order_by(Sale.id)
    ).all()
    return {
        "order_id": order.id,
        "external_id": order.external_id,
        "sales": [{"id": s.id, "seller_id": s.seller_id, "status": s.status} for s in sales],
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


def _insert_ignore(session: Session, table: Any, values: dict[str, Any], keys: list[str]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).values(**values).on_conflict_do_nothing(index_elements=keys))


def _place(ctx: ServiceContext, data: OrderIn, key: str | None, digest: str) -> OrderResult:
    with ctx.db.transaction() as session:
        existing = _existing(session, data, key, digest)
        if existing is not None:
            return OrderResult(_result(session, existing), created=False)
        now = ctx.clock()

        seller_ids = {item.seller_id for item in data.items}
        sellers = {
            s.id: s
            for s in session.execute(select(Seller).where(Seller.id.in_(seller_ids))).scalars()
        }
        for index, item in enumerate(data.items):
            seller = sellers.get(item.seller_id)
            if seller is None:
                raise InvalidInput(f"items.{index}.seller_id", f"no seller {item.seller_id}")
            if seller.suspended_until is not None and seller.suspended_until > now:
                raise Conflict(
                    f"seller {seller.id} is suspended until {seller.suspended_until.isoformat()}",
                    code="seller_suspended",
                )

        _insert_ignore(
            session,
            Buyer.__table__,
            {
                "email": data.buyer.email,
                "name": data.buyer.name,
                "locale": data.buyer.locale,
                "created_at": now,
            },
            ["email"],
        )
        buyer = session.execute(select(Buyer).where(Buyer.email == data.buyer.email)).scalar_one()
        if (buyer.name, buyer.locale) != (data.buyer.name, data.buyer.locale):
            buyer.name, buyer.locale = data.buyer.name, data.buyer.locale
            session.add(buyer)

        order = Order(
            external_id=data.external_id,
            idempotency_key=key,
            request_hash=digest,
            buyer_id=buyer.id,
            currency=data.currency,
            created_at=now,
        )
        session.add(order)
        session.flush()

        for index, item in enumerate(data.items):
            listing = _listing(session, item.seller_id, item.sku, item.title, now)
            if not listing.active:
                raise Conflict(
                    f"items.{index}: listing {item.sku!r} of seller {item.seller_id} "
                    "is not on sale",
                    code="listing_unavailable",
                )
            unit = int(item.unit_price * 100)
            sale = Sale(
                order_id=order.id,
                seller_id=item.seller_id,
                listing_id=listing.id,
                sku=item.sku,
                title=item.title,
                quantity=item.quantity,
                unit_price_cents=unit,
                amount_cents=unit * item.quantity,
                currency=data.currency,
                status=SaleStatus.PENDING.value,
                created_at=now,
                updated_at=now,
            )
            session.add(sale)
            session.flush()
            session.add(
                Payment(
                    sale_id=sale.id,
                    amount_cents=sale.amount_cents,
                    currency=sale.currency,
                    updated_at=now,
                )
            )
            session.add(
                SaleEvent(
                    sale_id=sale.id,
                    action="create",
                    from_status=None,
                    to_status=SaleStatus.PENDING.value,
                    actor=Actor.API.value,
                    channel=Channel.API.value,
                    at=now,
                )
            )
            notify.sale_created(ctx, session, sale, SaleCreated(sale.id, now))
        session.flush()
        for seller_id in sorted(seller_ids):
            # A new sale grows the denominator (and may cross min_sales).
            policy.evaluate(ctx, session, seller_id)
        return OrderResult(_result(session, order), created=True)


def _listing(session: Session, seller_id: int, sku: str, title: str, now: Any) -> Listing:
    _insert_ignore(
        session,
        Listing.__table__,
        {"seller_id": seller_id, "sku": sku, "title": title, "active": True, "updated_at": now},
        ["seller_id", "sku"],
    )
    return session.execute(
        select(Listing).where(Listing.seller_id == seller_id, Listing.sku == sku)
    ).scalar_one()
