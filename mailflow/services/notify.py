"""Events → emails: which template goes to whom, with which context.

Runs inside the transaction of the state change, so the emails commit with it. The context of
each key is documented in ``docs/templates.md``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from mailflow.domain.events import SaleCreated, SaleTransitioned
from mailflow.domain.sales import Action
from mailflow.mail.formatting import DEFAULT_LOCALE
from mailflow.mail.outbox import Recipient
from mailflow.services import facts, policy
from mailflow.services.context import ServiceContext
from mailflow.services.facts import SaleFacts
from mailflow.store.models import SaleEvent

BUYER, SELLER, SUPPORT = "buyer", "seller", "support"

# Who hears of each transition, and through which template.
NOTICES: dict[Action, tuple[tuple[str, str], ...]] = {
    Action.ACCEPT: ((BUYER, "buyer_sale_accepted"),),
    Action.REFUSE: ((BUYER, "buyer_sale_refused"),),
    Action.EXPIRE: ((BUYER, "buyer_sale_expired"),),
    Action.CANCEL: (
        (BUYER, "buyer_sale_cancelled"),
        (SUPPORT, "support_sale_cancelled"),
        (SELLER, "seller_sale_cancelled"),
    ),
    Action.WITHDRAW: ((BUYER, "buyer_withdrawal_confirmed"),),
}


def sale_context(ctx: ServiceContext, about: SaleFacts) -> dict[str, Any]:
    """The variables every sale email gets (documented in docs/templates.md)."""
    sale, seller, buyer, order = about.sale, about.seller, about.buyer, about.order
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
            "message": sale.message,
            "created_at": sale.created_at,
            "deadline": deadline,
        },
        "order": {"id": order.id, "external_id": order.external_id},
        "seller": {"id": seller.id, "name": seller.name, "email": seller.email},
        "buyer": {"name": buyer.name, "email": buyer.email},
    }


def _payment(about: SaleFacts) -> dict[str, Any]:
    payment = about.payment
    assert payment is not None
    return {
        "state": payment.state,
        "amount_cents": payment.amount_cents,
        "refunded_cents": payment.refunded_cents,
        "commission_cents": payment.commission_cents,
        "currency": payment.currency,
    }


def _rate(ctx: ServiceContext, session: Session, seller_id: int, at: Any) -> dict[str, Any]:
    since = policy.window_start(ctx.policy, at)
    return policy.rate_context(ctx, policy.counts_for(session, seller_id, since))


def preview_context(ctx: ServiceContext, session: Session, key: str, sale: Any) -> dict[str, Any]:
    """The context the emails about ``sale`` get, as the sending code builds it, for previews."""
    found = facts.load(session, sale.id)
    assert found is not None
    context = sale_context(ctx, found)
    context["links"] = _links(ctx, sale.id)
    context["payment"] = _payment(found)
    last = (
        session.execute(
            select(SaleEvent).where(SaleEvent.sale_id == sale.id).order_by(SaleEvent.id.desc())
        )
        .scalars()
        .first()
    )
    if last is not None:
        context["event"] = {"actor": last.actor, "channel": last.channel, "at": last.at}
    context["rate"] = _rate(ctx, session, found.seller.id, ctx.clock())
    return context


def _links(ctx: ServiceContext, sale_id: int) -> dict[str, str]:
    return {action: ctx.action_url(sale_id, action) for action in ("accept", "refuse", "view")}


def sale_created(
    ctx: ServiceContext, session: Session, about: SaleFacts, event: SaleCreated
) -> None:
    _to_seller_with_links(ctx, session, about, "seller_new_sale")


def deadline_near(ctx: ServiceContext, session: Session, about: SaleFacts) -> None:
    _to_seller_with_links(ctx, session, about, "seller_deadline_reminder")


def _to_seller_with_links(
    ctx: ServiceContext, session: Session, about: SaleFacts, key: str
) -> None:
    seller = about.seller
    context = sale_context(ctx, about)
    context["links"] = _links(ctx, about.sale.id)
    to = Recipient(seller.name, seller.email, seller.locale)
    ctx.outbox.queue(session, key, to, context, sale_id=about.sale.id)


def sale_transitioned(
    ctx: ServiceContext, session: Session, about: SaleFacts, event: SaleTransitioned
) -> None:
    """``about`` as the transition left the sale and its payment."""
    notices = NOTICES.get(event.action, ())
    if not notices:
        return
    seller, buyer = about.seller, about.buyer
    context = sale_context(ctx, about)
    context["payment"] = _payment(about)
    context["event"] = {"actor": event.actor.value, "channel": event.channel.value, "at": event.at}
    if event.action is Action.CANCEL:
        # The seller's confirmation shows the rate with this cancellation in it.
        context["rate"] = _rate(ctx, session, seller.id, event.at)
    recipients = {
        BUYER: Recipient(buyer.name, buyer.email, buyer.locale),
        SELLER: Recipient(seller.name, seller.email, seller.locale),
        SUPPORT: Recipient("Service client", ctx.support_address, DEFAULT_LOCALE),
    }
    for who, key in notices:
        ctx.outbox.queue(session, key, recipients[who], context, sale_id=about.sale.id)
