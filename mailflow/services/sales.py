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
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
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
from mailflow.services import facts, notify, policy
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict, NotFound
from mailflow.services.facts import SaleFacts
from mailflow.store import direct
from mailflow.store.direct import Direct
from mailflow.store.models import Listing, Payment, Sale, SaleEvent

_sales = Sale.__table__
_events = SaleEvent.__table__
_payments = Payment.__table__
_listings = Listing.__table__

# Transitions that move a seller's cancellation rate (acceptance and shipping do not).
RATE_MOVES = frozenset({Action.REFUSE, Action.EXPIRE, Action.CANCEL, Action.WITHDRAW})


@dataclass(frozen=True)
class Outcome:
    """The sale after the request, and whether this request changed it."""

    sale: dict[str, Any]
    """The sale as the API shows it; empty when the caller asked for ``view=False``."""
    changed: bool
    already_since: datetime | None = None
    facts: SaleFacts | None = None
    """The sale, its seller, order, buyer and payment as the transaction left them."""


def _money_of(payment: Any) -> money.Money:
    return money.Money(
        state=money.PaymentState(payment.state),
        amount=money.from_cents(payment.amount_cents),
        refunded=money.from_cents(payment.refunded_cents),
        commission=money.from_cents(payment.commission_cents),
        payout=money.from_cents(payment.payout_cents),
    )


_INSERT_EVENT = insert(_events)
_PAYMENT_COLUMNS = ("state", "refunded_cents", "commission_cents", "payout_cents", "updated_at")
_UPDATE_PAYMENT = (
    update(_payments)
    .where(_payments.c.sale_id == bindparam("b_sale_id"))
    .values({name: bindparam(name) for name in _PAYMENT_COLUMNS})
)


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


_LISTING_OFF_SALE = (
    update(_listings)
    .where(_listings.c.id == bindparam("b_id"))
    .values(stock=0, active=False, updated_at=bindparam("b_at"))
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
    view: bool = True,
) -> Outcome:
    """Apply ``action`` to the sale. ``view=False``: the caller shows the sale from
    ``Outcome.facts`` and ``Outcome.sale`` is left empty (no read of its history)."""
    if action in (Action.REFUSE, Action.CANCEL) and reason is None:
        reason = DEFAULT_REASON
    with ctx.db.transaction() as session:
        about = facts.load(session, sale_id)
        if about is None:
            raise NotFound(f"no sale {sale_id}")

        def outcome(changed: bool, since: datetime | None = None) -> Outcome:
            shown = sale_view(session, about.sale, about.payment) if view else {}
            return Outcome(shown, changed, since, about)

        sale = about.sale
        now = ctx.clock()
        try:
            step = plan(action, SaleStatus(sale.status))
        except AlreadyDone:
            return outcome(False, sale.updated_at)
        except IllegalTransition as exc:
            raise _conflict(exc) from exc

        values: dict[str, Any] = {"status": step.target.value, "updated_at": now}
        if reason:
            values["reason"] = reason.value
        if message is not None:
            values["message"] = message
        conn = direct.connection(session)
        sources = tuple(sorted(s.value for s in sources_of(action)))
        won = conn.execute(_cas(tuple(values), sources), {**values, "b_id": sale_id}).rowcount
        if not won:
            # Another request changed the sale between our read and our update.
            about = facts.load(session, sale_id)
            assert about is not None
            try:
                plan(action, SaleStatus(about.sale.status))
            except AlreadyDone:
                return outcome(False, about.sale.updated_at)
            except IllegalTransition as exc:
                raise _conflict(exc) from exc
            raise Conflict("the sale changed while the request ran; try again")
        sale.__dict__.update(values)  # what the UPDATE wrote: no need to read it back

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
        _record(ctx, session, about, event)
        notify.sale_transitioned(ctx, session, about, event)
        if action in RATE_MOVES:
            policy.evaluate(ctx, session, sale.seller_id, about.seller)
        return outcome(True)


def _conflict(exc: IllegalTransition) -> Conflict:
    return Conflict(
        f"cannot {exc.action.value} a sale that is {exc.status.value}",
        code="illegal_transition",
        hint=f"{exc.action.value}.{exc.status.value}",
        status=exc.status.value,
    )


def insert_event(
    conn: Direct,
    sale_id: int,
    action: str,
    source: str | None,
    target: str,
    actor: Actor,
    channel: Channel,
    at: datetime,
    *,
    reason: str | None = None,
    note: str | None = None,
) -> None:
    """One line of the sale's history (``source`` is None for its creation)."""
    conn.execute(
        _INSERT_EVENT,
        {
            "sale_id": sale_id,
            "action": action,
            "from_status": source,
            "to_status": target,
            "actor": actor.value,
            "channel": channel.value,
            "reason": reason,
            "note": note,
            "at": at,
        },
    )


def _record(
    ctx: ServiceContext, session: Session, about: SaleFacts, event: SaleTransitioned
) -> None:
    """The event, the money and the listing; ``about.payment`` is updated to match."""
    conn = direct.connection(session)
    insert_event(
        conn,
        event.sale_id,
        event.action.value,
        event.source.value,
        event.target.value,
        event.actor,
        event.channel,
        event.at,
        reason=event.reason,
        note=event.note,
    )
    payment = about.payment
    assert payment is not None
    before = _money_of(payment)
    after = money.settle(event.action, before, Decimal(str(ctx.policy.commission_rate)))
    if after != before:
        values = {
            "state": after.state.value,
            "refunded_cents": money.to_cents(after.refunded),
            "commission_cents": money.to_cents(after.commission),
            "payout_cents": money.to_cents(after.payout),
            "updated_at": event.at,
        }
        conn.execute(_UPDATE_PAYMENT, {**values, "b_sale_id": event.sale_id})
        payment.__dict__.update(values)
        ctx.payments.settle(session, event.sale_id, before, after, payment.currency, event.at)
    if event.action is Action.REFUSE and event.reason == Reason.OUT_OF_STOCK.value:
        # The seller guide: a refusal for lack of stock takes the listing off sale.
        conn.execute(_LISTING_OFF_SALE, {"b_id": about.sale.listing_id, "b_at": event.at})


def sale_view(session: Session, sale: Any, payment: Any = None) -> dict[str, Any]:
    """The sale as the API shows it: status, payment and event history. ``sale`` and
    ``payment`` are models or ``Record``s; the payment is read if not given."""
    if payment is None:
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
