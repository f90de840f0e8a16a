"""Sale transitions: accept, refuse, ship (and the rest of SPEC §2), one path for all.

Exactly one request wins a race: the state changes by compare-and-set
(``UPDATE … WHERE status IN (<allowed sources>)``), never by read-then-write. The loser sees
the winner's state: the same target is answered as "already done" and sends nothing, another
state is a conflict with a hint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from mailflow.domain import money
from mailflow.domain.events import SaleTransitioned
from mailflow.domain.sales import (
    DEFAULT_REASON,
    Action,
    Actor,
    AlreadyDone,
    Channel,
    IllegalTransition,
    Reason,
    SaleStatus,
    plan,
    sources_of,
)
from mailflow.i18n import hint_for
from mailflow.services import notify, policy
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict, NotFound
from mailflow.store.models import Listing, Payment, Sale, SaleEvent

_sales = Sale.__table__

# Transitions that move a seller's cancellation rate (acceptance and shipping do not).
RATE_MOVES = frozenset({Action.REFUSE, Action.EXPIRE, Action.CANCEL, Action.WITHDRAW})


@dataclass(frozen=True)
class Outcome:
    """The sale after the request, and whether this request changed it."""

    sale: dict[str, Any]
    changed: bool
    already_since: datetime | None = None


def _money_of(payment: Payment) -> money.Money:
    return money.Money(
        state=money.PaymentState(payment.state),
        amount=money.from_cents(payment.amount_cents),
        refunded=money.from_cents(payment.refunded_cents),
        commission=money.from_cents(payment.commission_cents),
        payout=money.from_cents(payment.payout_cents),
    )


def transition(
    ctx: ServiceContext,
    sale_id: int,
    action: Action,
    *,
    actor: Actor,
    channel: Channel,
    reason: Reason | None = None,
    message: str | None = None,
    note: str | None = None,
) -> Outcome:
    if action in (Action.REFUSE, Action.CANCEL) and reason is None:
        reason = DEFAULT_REASON
    with ctx.db.transaction() as session:
        sale = session.get(Sale, sale_id)
        if sale is None:
            raise NotFound(f"no sale {sale_id}")
        now = ctx.clock()
        try:
            step = plan(action, SaleStatus(sale.status))
        except AlreadyDone:
            return Outcome(sale_view(session, sale), changed=False, already_since=sale.updated_at)
        except IllegalTransition as exc:
            raise _conflict(exc) from exc

        won = session.execute(
            update(_sales)
            .where(
                _sales.c.id == sale_id,
                _sales.c.status.in_([s.value for s in sources_of(action)]),
            )
            .values(
                status=step.target.value,
                updated_at=now,
                **({"reason": reason.value} if reason else {}),
                **({"message": message} if message is not None else {}),
            )
        ).rowcount
        session.refresh(sale)
        if not won:
            # Another request changed the sale between our read and our update.
            try:
                plan(action, SaleStatus(sale.status))
            except AlreadyDone:
                return Outcome(
                    sale_view(session, sale), changed=False, already_since=sale.updated_at
                )
            except IllegalTransition as exc:
                raise _conflict(exc) from exc
            raise Conflict("the sale changed while the request ran; try again")

        event = SaleTransitioned(
            sale_id=sale_id,
            action=action,
            source=step.source,
            target=step.target,
            actor=actor,
            channel=channel,
            at=now,
            reason=reason.value if reason else None,
            message=message,
            note=note,
        )
        _record(ctx, session, sale, event)
        notify.sale_transitioned(ctx, session, sale, event)
        if action in RATE_MOVES:
            policy.evaluate(ctx, session, sale.seller_id)
        return Outcome(sale_view(session, sale), changed=True)


def _conflict(exc: IllegalTransition) -> Conflict:
    return Conflict(
        f"cannot {exc.action.value} a sale that is {exc.status.value}",
        code="illegal_transition",
        hint=hint_for(exc.action, exc.status, "en"),
        status=exc.status.value,
    )


def _record(ctx: ServiceContext, session: Session, sale: Sale, event: SaleTransitioned) -> None:
    session.add(
        SaleEvent(
            sale_id=event.sale_id,
            action=event.action.value,
            from_status=event.source.value,
            to_status=event.target.value,
            actor=event.actor.value,
            channel=event.channel.value,
            reason=event.reason,
            note=event.note,
            at=event.at,
        )
    )
    payment = session.get(Payment, event.sale_id)
    assert payment is not None
    before = _money_of(payment)
    after = money.settle(event.action, before, Decimal(str(ctx.policy.commission_rate)))
    if after != before:
        payment.state = after.state.value
        payment.refunded_cents = money.to_cents(after.refunded)
        payment.commission_cents = money.to_cents(after.commission)
        payment.payout_cents = money.to_cents(after.payout)
        payment.updated_at = event.at
        session.add(payment)
        ctx.payments.settle(session, event.sale_id, before, after, payment.currency, event.at)
    if event.action is Action.REFUSE and event.reason == Reason.OUT_OF_STOCK.value:
        # The seller guide: a refusal for lack of stock takes the listing off sale.
        listing = session.get(Listing, sale.listing_id)
        if listing is not None:
            listing.stock = 0
            listing.active = False
            listing.updated_at = event.at
            session.add(listing)


def sale_view(session: Session, sale: Sale) -> dict[str, Any]:
    """The sale as the API shows it: status, payment and event history."""
    payment = session.get(Payment, sale.id)
    events = session.execute(
        select(SaleEvent).where(SaleEvent.sale_id == sale.id).order_by(SaleEvent.id)
    ).scalars()
    return {
        "id": sale.id,
        "order_id": sale.order_id,
        "seller_id": sale.seller_id,
        "sku": sale.sku,
        "title": sale.title,
        "quantity": sale.quantity,
        "amount": _decimal(sale.amount_cents),
        "currency": sale.currency,
        "status": sale.status,
        "reason": sale.reason,
        "created_at": sale.created_at,
        "updated_at": sale.updated_at,
        "payment": {
            "state": payment.state if payment else None,
            "amount": _decimal(payment.amount_cents) if payment else None,
            "refunded": _decimal(payment.refunded_cents) if payment else None,
            "commission": _decimal(payment.commission_cents) if payment else None,
            "payout": _decimal(payment.payout_cents) if payment else None,
        },
        "events": [
            {
                "action": e.action,
                "from": e.from_status,
                "to": e.to_status,
                "actor": e.actor,
                "channel": e.channel,
                "reason": e.reason,
                "note": e.note,
                "at": e.at,
            }
            for e in events
        ],
    }


def _decimal(cents: int) -> str:
    return str(money.from_cents(cents))


def get_sale(ctx: ServiceContext, sale_id: int) -> dict[str, Any]:
    with ctx.db.read() as session:
        sale = session.get(Sale, sale_id)
        if sale is None:
            raise NotFound(f"no sale {sale_id}")
        return sale_view(session, sale)
