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

from mailflow.domain.events import SaleCreated
from mailflow.domain.money import PaymentState
from mailflow.domain.sales import Actor, Channel, SaleStatus
from mailflow.schemas import OrderIn
from mailflow.services import policy
from mailflow.services.context import ServiceContext
from mailflow.services.dispatch import dispatch
from mailflow.services.errors import Conflict, InvalidInput
from mailflow.store import orders as store
from mailflow.store import sales as sale_store
from mailflow.store.database import Transaction
from mailflow.store.orders import DuplicateOrder, StoredOrder
from mailflow.store.records import OrderRecord, PaymentRecord, SaleFacts, SaleRecord


@dataclass(frozen=True)
class OrderResult:
    body: dict[str, Any]
    created: bool


def _request_hash(data: OrderIn) -> str:
    canonical = json.dumps(data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _result(tx: Transaction, order: StoredOrder) -> dict[str, Any]:
    return _body(order, store.sales_of(tx, order.id))


def _body(order: Any, sales_of_order: Any) -> dict[str, Any]:
    """The API's answer: ``order`` and its sales (records, either stored or just made)."""
    return {
        "order_id": order.id,
        "external_id": order.external_id,
        "sales": [
            {"id": s.id, "seller_id": s.seller_id, "status": s.status} for s in sales_of_order
        ],
    }


def _existing(tx: Transaction, data: OrderIn, key: str | None, digest: str) -> StoredOrder | None:
    if key is not None:
        order = store.by_idempotency_key(tx, key)
        if order is not None:
            if order.request_hash != digest:
                raise Conflict(
                    "this Idempotency-Key was used for a different request",
                    code="idempotency_key_reused",
                )
            return order
    return store.by_external_id(tx, data.external_id)


def place_order(ctx: ServiceContext, data: OrderIn, idempotency_key: str | None) -> OrderResult:
    digest = _request_hash(data)
    try:
        return _place(ctx, data, idempotency_key, digest)
    except DuplicateOrder:
        # A concurrent request with the same external_id or key committed first.
        with ctx.db.read() as session:
            order = _existing(session, data, idempotency_key, digest)
            if order is None:
                raise
            return OrderResult(_result(session, order), created=False)


def _place(ctx: ServiceContext, data: OrderIn, key: str | None, digest: str) -> OrderResult:
    # No look-up of an earlier order first: a repeat (same external_id or Idempotency-Key)
    # fails the order's INSERT on its unique constraint, before anything is checked or
    # queued, and ``place_order`` answers it from the order already there.
    with ctx.db.transaction() as session:
        now = ctx.clock()
        seller_ids = sorted({item.seller_id for item in data.items})
        sellers = sale_store.sellers(session, seller_ids)
        buyer = store.buyer(session, data.buyer.email, data.buyer.name, data.buyer.locale, now)
        order_values: dict[str, Any] = {
            "external_id": data.external_id,
            "idempotency_key": key,
            "request_hash": digest,
            "buyer_id": buyer.id,
            "currency": data.currency,
            "created_at": now,
        }
        order = OrderRecord(store.insert_order(session, order_values), data.external_id, buyer.id)

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
            listing = store.listing(session, item.seller_id, item.sku, item.title, now)
            if not listing.active:
                raise Conflict(
                    f"items.{index}: listing {item.sku!r} of seller {item.seller_id} "
                    "is not on sale",
                    code="listing_unavailable",
                )
            unit = int(item.unit_price * 100)
            sale_values: dict[str, Any] = {
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
            sale_id = store.insert_sale(session, sale_values)
            sale = SaleRecord(id=sale_id, reason=None, message=None, **sale_values)
            payment = PaymentRecord(
                sale_id=sale_id,
                state=PaymentState.AUTHORIZED.value,
                amount_cents=sale.amount_cents,
                refunded_cents=0,
                commission_cents=0,
                payout_cents=0,
                currency=sale.currency,
                updated_at=now,
            )
            store.insert_payment(session, payment)
            sale_store.insert_event(
                session,
                sale_id,
                "create",
                None,
                SaleStatus.PENDING.value,
                Actor.API.value,
                Channel.API.value,
                now,
            )
            about = SaleFacts(sale, sellers[item.seller_id], order, buyer, payment)
            dispatch(ctx, session, (SaleCreated(sale_id, now),), about)
            made.append(sale)
        for seller_id in seller_ids:
            # A new sale grows the denominator (and may cross min_sales).
            policy.evaluate(ctx, session, seller_id, sellers[seller_id])
        return OrderResult(_body(order, made), created=True)
