"""Events → emails: which template goes to whom, with which context.

Runs inside the transaction of the state change, so the emails commit with it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session

from mailflow.domain.events import SaleCreated, SaleTransitioned
from mailflow.domain.sales import Action
from mailflow.mail.outbox import Recipient
from mailflow.services.context import ServiceContext
from mailflow.store.models import Buyer, Order, Sale, Seller

# The buyer's notice for each transition the seller or the system makes.
BUYER_NOTICES = {
    Action.REFUSE: "buyer_sale_refused",
    Action.ACCEPT: "buyer_sale_accepted",
}


def sale_context(
    ctx: ServiceContext, sale: Sale, seller: Seller, buyer: Buyer, order: Order
) -> dict[str, Any]:
    """The variables every sale email gets (documented with the templates)."""
    deadline = sale.created_at + timedelta(hours=ctx.policy.acceptance_deadline_hours)
    return {
        "sale": {
            "id": sale.id,
            "title": sale.title,
            "sku": sale.sku,
            "quantity": sale.quantity,
            "unit_price_cents": sale.unit_price_cents,
            "amount_cents": sale.amount_cents,
            "currency": sale.currency,
            "status": sale.status,
            "reason": sale.reason,
            "created_at": sale.created_at,
            "deadline": deadline,
        },
        "order": {"id": order.id, "external_id": order.external_id},
        "seller": {"id": seller.id, "name": seller.name},
        "buyer": {"name": buyer.name},
    }


def _parties(session: Session, sale: Sale) -> tuple[Seller, Buyer, Order]:
    order = session.get(Order, sale.order_id)
    seller = session.get(Seller, sale.seller_id)
    assert order is not None and seller is not None
    buyer = session.get(Buyer, order.buyer_id)
    assert buyer is not None
    return seller, buyer, order


def sale_created(ctx: ServiceContext, session: Session, sale: Sale, event: SaleCreated) -> None:
    seller, buyer, order = _parties(session, sale)
    assert sale.id is not None
    context = sale_context(ctx, sale, seller, buyer, order)
    context["links"] = {
        "accept": ctx.action_url(sale.id, "accept"),
        "refuse": ctx.action_url(sale.id, "refuse"),
        "view": ctx.action_url(sale.id, "view"),
    }
    to = Recipient(seller.name, seller.email, seller.locale)
    ctx.outbox.queue(session, "seller_new_sale", to, context, sale_id=sale.id)


def sale_transitioned(
    ctx: ServiceContext, session: Session, sale: Sale, event: SaleTransitioned
) -> None:
    key = BUYER_NOTICES.get(event.action)
    if key is None:
        return
    seller, buyer, order = _parties(session, sale)
    context = sale_context(ctx, sale, seller, buyer, order)
    to = Recipient(buyer.name, buyer.email, buyer.locale)
    ctx.outbox.queue(session, key, to, context, sale_id=sale.id)
