"""Sale transitions: accept, refuse, ship (and the rest of docs/states.md), one path for all.

Exactly one request wins a race: the state changes by compare-and-set
(``UPDATE … WHERE status IN (<allowed sources>)``), never by read-then-write. The loser sees
the winner's state: the same target is answered as "already done" and sends nothing, another
state is a conflict with a hint.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

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
    deadline_of,
    hint_code,
    plan,
    sources_of,
)
from mailflow.payments import Settlement
from mailflow.schemas import MAX_ID
from mailflow.services import policy
from mailflow.services.context import ServiceContext
from mailflow.services.dispatch import dispatch
from mailflow.services.errors import Conflict, NotFound
from mailflow.store import outbox as outbox_store
from mailflow.store import sales as store
from mailflow.store.database import Transaction
from mailflow.store.records import PaymentRecord, SaleFacts, SaleRecord

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


def money_of(payment: PaymentRecord) -> money.Money:
    """The stored payment as the money rules take it."""
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
    view: bool = True,
) -> Outcome:
    """Apply ``action`` to the sale. ``view=False``: the caller shows the sale from
    ``Outcome.facts`` and ``Outcome.sale`` is left empty (no read of its history).

    A pending sale past its acceptance deadline is expired first, whatever is asked of it:
    the expiry is committed and the action answered as a conflict with the expired sale,
    so a late click never accepts a sale the sweep has not reached yet."""
    with ctx.db.transaction() as session:
        about = store.facts(session, sale_id)
        if about is None:
            raise NotFound(f"no sale {sale_id}")
        done = transition_in(
            ctx,
            session,
            about,
            action,
            actor=actor,
            channel=channel,
            reason=reason,
            message=message,
            note=note,
        )
        if done is not None:
            shown = sale_view(session, done.sale, done.payment) if view else {}
            since = None if done.changed else done.sale.updated_at
            return Outcome(shown, done.changed, since, done.facts)
    # Raised once the expiry is committed.
    raise conflict_of(IllegalTransition(action, SaleStatus.EXPIRED))


@dataclass(frozen=True)
class Applied:
    """What ``transition_in`` did: whether it changed the sale, and the sale as it now is."""

    changed: bool
    facts: SaleFacts

    @property
    def sale(self) -> SaleRecord:
        return self.facts.sale

    @property
    def payment(self) -> PaymentRecord | None:
        return self.facts.payment


def transition_in(
    ctx: ServiceContext,
    tx: Transaction,
    about: SaleFacts,
    action: Action,
    *,
    actor: Actor,
    channel: Channel,
    reason: Reason | None = None,
    message: str | None = None,
    note: str | None = None,
) -> Applied | None:
    """``transition`` in the caller's transaction ``tx`` (``about``: the sale as ``tx`` read
    it): an email command runs in the transaction that keeps the email. None when the sale
    was pending past its deadline and this call expired it (the action is then impossible;
    the expiry is written in ``tx``). Raises ``Conflict`` when the state does not allow the
    action."""
    if action in (Action.REFUSE, Action.CANCEL) and reason is None:
        reason = DEFAULT_REASON
    now = ctx.clock()
    if action is not Action.EXPIRE and _expired_first(ctx, tx, about, action, now):
        return None
    changed, about = _checked(
        ctx,
        tx,
        about,
        action,
        now,
        actor=actor,
        channel=channel,
        reason=reason,
        message=message,
        note=note,
    )
    return Applied(changed, about)


def _expired_first(
    ctx: ServiceContext, tx: Transaction, about: SaleFacts, action: Action, now: datetime
) -> bool:
    """Whether the sale was pending past its deadline and this call expired it, as the sweep
    would. When another request moved it first, ``about`` is left stale: the action's own
    compare-and-set then fails and reads the sale again."""
    sale = about.sale
    if sale.status != SaleStatus.PENDING.value:
        return False
    if now < deadline_of(sale.created_at, ctx.policy.acceptance_deadline_hours):
        return False
    note = f"deadline passed before {action.value}"
    try:
        done = _apply(
            ctx, tx, about, Action.EXPIRE, now, actor=Actor.SYSTEM, channel=Channel.SWEEP, note=note
        )
    except IllegalTransition:
        return False  # a request moved it first, and not to expired
    return done is not None and done[0]


def _checked(
    ctx: ServiceContext,
    tx: Transaction,
    about: SaleFacts,
    action: Action,
    now: datetime,
    **how: Any,
) -> tuple[bool, SaleFacts]:
    """``_apply``, with an impossible action raised as a conflict: whether it changed the
    sale, and the sale as it now is."""
    try:
        applied = _apply(ctx, tx, about, action, now, **how)
    except (AlreadyDone, IllegalTransition) as exc:
        raise conflict_of(exc) from exc
    if applied is None:
        raise Conflict("the sale changed while the request ran; try again")
    return applied


def _apply(
    ctx: ServiceContext,
    tx: Transaction,
    about: SaleFacts,
    action: Action,
    now: datetime,
    *,
    actor: Actor,
    channel: Channel,
    reason: Reason | None = None,
    message: str | None = None,
    note: str | None = None,
) -> tuple[bool, SaleFacts] | None:
    """The transition by compare-and-set: ``(False, facts)`` when the sale is already where
    ``action`` leads, ``(True, facts)`` when this call moved it, None when another request
    moved it elsewhere between the read and the update and it is now in a state the action
    still allows (the caller retries or gives up). Raises IllegalTransition."""
    sale = about.sale
    try:
        step = plan(action, SaleStatus(sale.status))
    except AlreadyDone:
        return False, about
    values: dict[str, Any] = {"status": step.target.value, "updated_at": now}
    if reason:
        values["reason"] = reason.value
    if message is not None:
        values["message"] = message
    sources = tuple(sorted(s.value for s in sources_of(action)))
    if not store.change_if(tx, sale.id, sources, values):
        # Another request changed the sale between our read and our update.
        now_about = store.facts(tx, sale.id)
        assert now_about is not None
        try:
            plan(action, SaleStatus(now_about.sale.status))
        except AlreadyDone:
            return False, now_about
        return None
    # What the UPDATE wrote: no need to read it back.
    about = replace(about, sale=replace(sale, **values))
    event = SaleTransitioned(
        sale_id=sale.id,
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
    about = _record(ctx, tx, about, event)
    dispatch(ctx, tx, (event,), about)
    if action in RATE_MOVES:
        policy.evaluate(ctx, tx, sale.seller_id, about.seller)
    return True, about


def conflict_of(exc: IllegalTransition | AlreadyDone) -> Conflict:
    """The answer to an action the sale's state does not allow, with its hint code."""
    return Conflict(
        f"cannot {exc.action.value} a sale that is {exc.status.value}",
        code="illegal_transition",
        hint=hint_code(exc.action, exc.status),
        status=exc.status.value,
    )


def _record(
    ctx: ServiceContext, tx: Transaction, about: SaleFacts, event: SaleTransitioned
) -> SaleFacts:
    """The event, the money and the listing; ``about`` with the payment as it now is."""
    store.insert_event(
        tx,
        event.sale_id,
        event.action.value,
        event.source.value,
        event.target.value,
        event.actor.value,
        event.channel.value,
        event.at,
        reason=event.reason,
        note=event.note,
    )
    payment = about.payment
    assert payment is not None
    before = money_of(payment)
    after = money.settle(event.action, before, Decimal(str(ctx.policy.commission_rate)))
    if after != before:
        values: dict[str, Any] = {
            "state": after.state.value,
            "refunded_cents": money.to_cents(after.refunded),
            "commission_cents": money.to_cents(after.commission),
            "payout_cents": money.to_cents(after.payout),
            "updated_at": event.at,
        }
        store.update_payment(tx, event.sale_id, values)
        about = replace(about, payment=replace(payment, **values))
        ctx.payments.settle(
            tx, Settlement(event.sale_id, before, after, payment.currency, event.at)
        )
    if event.action is Action.REFUSE and event.reason == Reason.OUT_OF_STOCK.value:
        # The seller guide: a refusal for lack of stock takes the listing off sale.
        store.take_listing_off_sale(tx, about.sale.listing_id, event.at)
    return about


def sale_view(
    tx: Transaction, sale: SaleRecord, payment: PaymentRecord | None = None
) -> dict[str, Any]:
    """The sale as the API shows it: status, payment and event history; the payment is read
    if not given."""
    if payment is None:
        payment = store.payment(tx, sale.id)
    events = store.history(tx, sale.id)
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
    """The sale as ``sale_view`` shows it, with its emails and their delivery state."""
    with ctx.db.read() as session:
        sale = store.sale(session, sale_id)
        if sale is None:
            raise NotFound(f"no sale {sale_id}")
        return {**sale_view(session, sale), "emails": emails_view(session, sale_id)}


def emails_view(tx: Transaction, sale_id: int) -> list[dict[str, Any]]:
    """The sale's emails: key, recipient, status (``queued|sent|dead|bounced|suppressed``),
    Message-ID, and the bounce when one came back."""
    return [
        {
            "key": e.template,
            "to": e.recipient,
            "status": e.status,
            "message_id": e.message_id,
            "bounce": None
            if e.bounce_status is None
            else {"status": e.bounce_status, "diagnostic": e.bounce_diagnostic or ""},
        }
        for e in outbox_store.of_sale(tx, sale_id)
    ]


def facts_of(tx: Transaction, sale_id: int) -> SaleFacts:
    """The sale with its seller, order, buyer and payment, read in ``tx``. Raises
    ``NotFound``."""
    about = store.facts(tx, sale_id) if 0 < sale_id <= MAX_ID else None
    if about is None:
        raise NotFound(f"no sale {sale_id}")
    return about
