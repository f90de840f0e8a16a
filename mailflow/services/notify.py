"""Events → emails: which template goes to whom, with which context.

The ``notify`` handlers of ``services.dispatch``: each runs inside the transaction of the
change, so the emails commit with it. Each builds its kind's typed context
(``mail.contexts``), the class ``docs/templates.md`` documents.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mailflow.domain.conversation import Author
from mailflow.domain.events import (
    AddressSuppressed,
    DeadlineNear,
    LoginLinkRequested,
    SaleCreated,
    SaleTransitioned,
    SellerReinstated,
    SellerSuspended,
    TierEntered,
    TierEvent,
)
from mailflow.domain.policy import REINSTATED_EMAIL, TIER_EMAILS, Tier
from mailflow.domain.sales import Action, deadline_of
from mailflow.inbound.replyto import ReplyToken
from mailflow.inbound.replyto import reply_address as make_reply_address
from mailflow.mail.contexts import (
    BounceVars,
    BuyerVars,
    EventVars,
    LinkVars,
    LoginLinkEmail,
    OrderVars,
    PaymentVars,
    RateVars,
    SaleChangeEmail,
    SaleEmail,
    SaleOrderEmail,
    SaleVars,
    SellerCancelEmail,
    SellerUnreachableEmail,
    SellerVars,
    TierEmail,
    as_context,
)
from mailflow.mail.formatting import DEFAULT_LOCALE
from mailflow.mail.outbox import Recipient
from mailflow.services.context import ServiceContext
from mailflow.services.rates import rate_vars, window_start
from mailflow.store import sales as sale_store
from mailflow.store.database import Transaction
from mailflow.store.records import SaleFacts, SellerRecord

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
LOGIN_LINK_EMAIL = "seller_login_link"
UNREACHABLE_EMAIL = "support_seller_unreachable"
ORDER_EMAILS = frozenset({"seller_new_sale", "seller_deadline_reminder"})
"""The emails whose bounce leaves a sale unseen: customer service is told."""
LINK_ACTIONS = ("accept", "refuse", "view")


def _seller_vars(seller: Any) -> SellerVars:
    return SellerVars(id=seller.id, name=seller.name, email=seller.email)


def sale_email(ctx: ServiceContext, about: Any) -> SaleEmail:
    """The groups every sale email gets; ``about`` is a ``SaleFacts`` (or as shaped)."""
    sale, seller, buyer, order = about.sale, about.seller, about.buyer, about.order
    return SaleEmail(
        SaleVars(
            id=sale.id,
            title=sale.title,
            sku=sale.sku,
            quantity=sale.quantity,
            unit_price_cents=sale.unit_price_cents,
            amount_cents=sale.amount_cents,
            currency=sale.currency,
            status=sale.status,
            reason=sale.reason,
            message=sale.message,
            created_at=sale.created_at,
            deadline=deadline_of(sale.created_at, ctx.policy.acceptance_deadline_hours),
        ),
        OrderVars(id=order.id, external_id=order.external_id),
        _seller_vars(seller),
        BuyerVars(name=buyer.name, email=buyer.email),
    )


def sale_context(ctx: ServiceContext, about: Any) -> dict[str, Any]:
    """The variables every sale email gets, as templates get them."""
    return as_context(sale_email(ctx, about))


def _payment(about: SaleFacts) -> PaymentVars:
    payment = about.payment
    assert payment is not None
    return PaymentVars(
        state=payment.state,
        amount_cents=payment.amount_cents,
        refunded_cents=payment.refunded_cents,
        commission_cents=payment.commission_cents,
        currency=payment.currency,
    )


def _rate(ctx: ServiceContext, tx: Transaction, seller_id: int, at: datetime) -> RateVars:
    since = window_start(ctx.policy, at)
    return rate_vars(ctx.policy, ctx.standings.counts(tx, seller_id, since))


def links_of(ctx: ServiceContext, sale_id: int) -> LinkVars:
    return LinkVars(*(ctx.action_url(sale_id, action) for action in LINK_ACTIONS))


_links = links_of

# The emails that invite an answer carry a Reply-To into the sale's conversation (SPEC §7):
# the seller's order emails (where the answer may be a command) and cancellation notice,
# and every buyer_sale_* email.
REPLY_TO: dict[str, tuple[Author, bool]] = {
    "seller_new_sale": (Author.SELLER, True),
    "seller_deadline_reminder": (Author.SELLER, True),
    "seller_sale_cancelled": (Author.SELLER, False),
    "buyer_sale_refused": (Author.BUYER, False),
    "buyer_sale_expired": (Author.BUYER, False),
    "buyer_sale_accepted": (Author.BUYER, False),
    "buyer_sale_cancelled": (Author.BUYER, False),
}


def reply_address(
    ctx: ServiceContext, sale_id: int, party: Author, commands: bool = False
) -> str | None:
    """The ``reply+`` address of the sale's conversation for ``party``, or None when mailflow
    receives no mail (``[inbound]`` disabled)."""
    if not ctx.verp or ctx.addresses is None:
        return None
    return make_reply_address(ctx.addresses, ReplyToken(sale_id, party, commands))


def _reply_to(ctx: ServiceContext, key: str, sale_id: int) -> str | None:
    found = REPLY_TO.get(key)
    return None if found is None else reply_address(ctx, sale_id, *found)


def _to(person: Any) -> Recipient:
    return Recipient(person.name, person.email, person.locale)


def preview_context(ctx: ServiceContext, tx: Transaction, about: SaleFacts) -> dict[str, Any]:
    """The context the emails about a sale get, as the sending code builds it, for previews:
    every group a sale email can have, with the sale's last event and the seller's rate now.
    ``about``: the sale with its parties, as ``tx`` read them."""
    context = sale_context(ctx, about)
    context["links"] = as_context(_links(ctx, about.sale.id))
    context["reply_commands"] = ctx.verp and ctx.addresses is not None
    context["payment"] = as_context(_payment(about))
    last = sale_store.last_event(tx, about.sale.id)
    if last is not None:
        context["event"] = as_context(EventVars(last.actor, last.channel, last.at))
    context["rate"] = as_context(_rate(ctx, tx, about.seller.id, ctx.clock()))
    return context


# --- handlers ------------------------------------------------------------------------------


def sale_created(
    ctx: ServiceContext, tx: Transaction, event: SaleCreated, about: SaleFacts
) -> None:
    _to_seller_with_links(ctx, tx, about, "seller_new_sale")


def deadline_near(
    ctx: ServiceContext, tx: Transaction, event: DeadlineNear, about: SaleFacts
) -> None:
    _to_seller_with_links(ctx, tx, about, "seller_deadline_reminder")


def _to_seller_with_links(ctx: ServiceContext, tx: Transaction, about: SaleFacts, key: str) -> None:
    base = sale_email(ctx, about)
    context = SaleOrderEmail(
        base.sale,
        base.order,
        base.seller,
        base.buyer,
        _links(ctx, about.sale.id),
        ctx.verp and ctx.addresses is not None,
    )
    ctx.outbox.queue(
        tx,
        key,
        _to(about.seller),
        as_context(context),
        sale_id=about.sale.id,
        reply_to=_reply_to(ctx, key, about.sale.id),
    )


def sale_transitioned(
    ctx: ServiceContext, tx: Transaction, event: SaleTransitioned, about: SaleFacts
) -> None:
    """``about`` as the transition left the sale and its payment."""
    notices = NOTICES.get(event.action, ())
    if not notices:
        return
    base = sale_email(ctx, about)
    parts = (
        base.sale,
        base.order,
        base.seller,
        base.buyer,
        _payment(about),
        EventVars(actor=event.actor.value, channel=event.channel.value, at=event.at),
    )
    change: SaleChangeEmail
    if event.action is Action.CANCEL:
        # The seller's confirmation shows the rate with this cancellation in it; the three
        # cancellation emails share one context.
        change = SellerCancelEmail(*parts, _rate(ctx, tx, about.seller.id, event.at))
    else:
        change = SaleChangeEmail(*parts)
    context = as_context(change)
    recipients = {
        BUYER: _to(about.buyer),
        SELLER: _to(about.seller),
        SUPPORT: Recipient("Service client", ctx.support_address, DEFAULT_LOCALE),
    }
    for who, key in notices:
        ctx.outbox.queue(
            tx,
            key,
            recipients[who],
            context,
            sale_id=about.sale.id,
            reply_to=_reply_to(ctx, key, about.sale.id),
        )


def tier_email_key(event: TierEvent) -> str:
    """The email of an announced tier entry: one per entry."""
    match event:
        case SellerReinstated():
            return REINSTATED_EMAIL
        case SellerSuspended():
            return TIER_EMAILS[Tier.SUSPENDED] or ""
        case TierEntered(tier=tier):
            key = TIER_EMAILS[tier]
            assert key is not None, f"entering {tier} is not announced"
            return key


def tier_entered(
    ctx: ServiceContext, tx: Transaction, event: TierEvent, about: SellerRecord
) -> None:
    """A tier email, from seller support, with the standing after the whole change."""
    after = event.standing
    context = TierEmail(
        seller=_seller_vars(about),
        rate=rate_vars(ctx.policy, event.counts),
        tier=after.tier.value,
        suspended_until=after.suspended_until,
        grace_ends=(after.since or event.at) + timedelta(days=ctx.policy.grace_days),
        now=event.at,
    )
    ctx.outbox.queue(
        tx,
        tier_email_key(event),
        _to(about),
        as_context(context),
        sender=ctx.seller_support_address,
    )


def login_link_requested(
    ctx: ServiceContext, tx: Transaction, event: LoginLinkRequested, about: SellerRecord
) -> None:
    token = ctx.signer.login_token(event.seller_id, event.nonce)
    context = LoginLinkEmail(
        seller=_seller_vars(about),
        login_url=f"{ctx.base_url}/seller/login/{token}",
        valid_minutes=event.valid_minutes,
    )
    ctx.outbox.queue(tx, LOGIN_LINK_EMAIL, _to(about), as_context(context))


def address_suppressed(
    ctx: ServiceContext, tx: Transaction, event: AddressSuppressed, about: SaleFacts | None
) -> None:
    """A seller's order email or reminder bounced for good: customer service is told, once
    (the event comes once per suppression)."""
    if event.template not in ORDER_EMAILS or about is None:
        return
    base = sale_email(ctx, about)
    context = SellerUnreachableEmail(
        base.sale,
        base.order,
        base.seller,
        base.buyer,
        BounceVars(
            address=event.email,
            email=event.template,
            status=event.status,
            diagnostic=event.diagnostic,
            at=event.at,
        ),
    )
    support = Recipient("Service client", ctx.support_address, DEFAULT_LOCALE)
    ctx.outbox.queue(tx, UNREACHABLE_EMAIL, support, as_context(context), sale_id=about.sale.id)
