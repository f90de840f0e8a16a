"""One typed context per shape of email: the variables its templates get, and nothing else.

Each email kind (``mail.catalog``) names its context class; from it come the variables an
edited template may use (``EmailKind.variables``), the sample (an instance), the sending code
(``services.notify`` builds instances) and the tables of ``docs/templates.md``
(``mail.docs``). A field's ``doc`` is its type and meaning, as the documentation shows them.

Templates get plain dicts (``as_context``): the renderer, the validation and the admin
previews read groups by key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from functools import cache
from typing import Any, get_type_hints


def var(doc: str, short: str | None = None) -> Any:
    """A template variable; ``short``: how the variable list names a scalar (else ``doc``)."""
    return field(metadata={"doc": doc, "short": short or doc})


# --- groups ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaleVars:
    id: int = var("`int`")
    title: str = var("`str`")
    sku: str = var("`str`")
    quantity: int = var("`int`")
    unit_price_cents: int = var("`int` (cents)")
    amount_cents: int = var("`int` (cents, quantity × unit price)")
    currency: str = var("`str` (ISO 4217)")
    status: str = var(
        "`str`: `pending`, `accepted`, `shipped`, `refused`, `expired`, `cancelled`, `withdrawn`"
    )
    reason: str | None = var("`str \\| None`: reason code (refuse, cancel)")
    message: str | None = var(
        "`str \\| None`: the seller's message to the buyer on cancel (free text, up to 2,000 "
        "characters, may contain line breaks and `<`; show it as text)"
    )
    created_at: datetime = var("`datetime` (UTC)")
    deadline: datetime = var("`datetime` (UTC): `created_at` + `policy.acceptance_deadline_hours`")


@dataclass(frozen=True, slots=True)
class OrderVars:
    id: int = var("`int`")
    external_id: str = var("`str`: the marketplace's order number")


@dataclass(frozen=True, slots=True)
class SellerVars:
    id: int = var("`int`")
    name: str = var("`str`")
    email: str = var("`str`")


@dataclass(frozen=True, slots=True)
class BuyerVars:
    name: str = var("`str`")
    email: str = var("`str`")


@dataclass(frozen=True, slots=True)
class LinkVars:
    """Signed action links (``/s/<token>``): a ``GET`` shows a confirmation page, the button
    performs the action."""

    accept: str = var("`str` (URL)")
    refuse: str = var('`str` (URL): the "article no longer available" link')
    view: str = var("`str` (URL): the sale in the order list")


@dataclass(frozen=True, slots=True)
class PaymentVars:
    """The payment after the change."""

    state: str = var("`str`: `authorized`, `captured`, `released`, `refunded`")
    amount_cents: int = var("`int` (cents)")
    refunded_cents: int = var("`int` (cents); 0 unless refunded")
    commission_cents: int = var("`int` (cents); charged on a seller cancellation only")
    currency: str = var("`str`")


@dataclass(frozen=True, slots=True)
class EventVars:
    actor: str = var("`str`: `seller`, `buyer`, `support`, `system`, `api`")
    channel: str = var("`str`: `email-link`, `email-reply`, `portal`, `api`, `cli`, `sweep`")
    at: datetime = var("`datetime` (UTC)")


@dataclass(frozen=True, slots=True)
class RateVars:
    """The cancellation rate over the seller's sales in the rolling window. The policy values
    (``threshold``, ``window_days``, …) come from ``[policy]`` in the configuration: show them
    with these variables, never as fixed text ("5 %"); as percentages:
    ``{{ rate.value|percent }}``, ``{{ rate.threshold|percent }}`` (``5 %`` in fr, ``5%`` in
    en)."""

    value: float = var(
        "`float` (ratio): (`cancelled` [+ `refused` if `count_refusals`]) / `counted`; 0.0 "
        "when `counted` is 0"
    )
    threshold: float = var(
        "`float` (ratio): `policy.threshold`, the rate to stay under (exactly the threshold "
        "is over)"
    )
    warning_at: float = var(
        "`float` (ratio): `threshold × warning_ratio`, where the warning band starts"
    )
    counted: int = var("`int`: sales in the window, withdrawn ones excluded (the denominator)")
    cancelled: int = var("`int`: sales in the window cancelled by the seller")
    refused: int = var(
        "`int`: sales in the window refused or expired (in the numerator only if `count_refusals`)"
    )
    withdrawn: int = var("`int`: sales in the window withdrawn by the buyer (never counted)")
    window_days: float = var(
        "`int \\| float`: `policy.window_days` (may be a float such as `30.0` when set in the "
        "configuration file: print it with `'%g'\\|format(rate.window_days)`)"
    )
    min_sales: int = var("`int`: `policy.min_sales`; below this many counted sales, no tier change")
    count_refusals: bool = var("`bool`: `policy.count_refusals`")


@dataclass(frozen=True, slots=True)
class BounceVars:
    """The bounce that made the seller unreachable (a DSN to the email's ``bounce+``
    address)."""

    address: str = var("`str`: the address that bounced, now on the suppression list")
    email: str = var("`str`: the key of the email that bounced (`seller_new_sale`, …)")
    status: str = var("`str`: the enhanced status code, e.g. `5.1.1`")
    diagnostic: str = var("`str`: the receiving server's words (one line, may be empty)")
    at: datetime = var("`datetime` (UTC): when the bounce was received")


# --- contexts (one per shape of email) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaleEmail:
    """Every sale email: the sale, its order, seller and buyer."""

    sale: SaleVars
    order: OrderVars
    seller: SellerVars
    buyer: BuyerVars


@dataclass(frozen=True, slots=True)
class SaleOrderEmail(SaleEmail):
    """The seller's order emails: the sale and the links to answer it."""

    links: LinkVars
    # ``field`` rather than ``var`` (the same thing), so that type checkers see no default
    # and let subclasses add groups after it.
    reply_commands: bool = field(
        metadata={
            "doc": "`bool`: a reply to this email reaches mailflow (`[inbound]` is enabled), "
            "so the email may tell the seller to answer `REFUSER` (or `ACCEPTER`) instead of "
            "clicking",
            "short": "whether the seller can answer REFUSER / ACCEPTER by email",
        }
    )


@dataclass(frozen=True, slots=True)
class SaleChangeEmail(SaleEmail):
    """An email sent on a state change (accept, refuse, expire, cancel, withdraw): the values
    are those after the change."""

    payment: PaymentVars
    event: EventVars


@dataclass(frozen=True, slots=True)
class SellerCancelEmail(SaleChangeEmail):
    """The seller's cancellation notice: the change, and the rate with this cancellation
    in it."""

    rate: RateVars


@dataclass(frozen=True, slots=True)
class TierEmail:
    """A tier change (sent from ``smtp.seller_support_address``). When one evaluation sends two
    emails (a suspension ends and the rate is still over: ``seller_reinstated`` then
    ``seller_rate_alert``) both get the same context, the one after the change."""

    seller: SellerVars
    rate: RateVars
    tier: str = var(
        "`str`: the tier after the change: `ok`, `warning`, `over`, `suspended`",
        "the new tier: ok, warning, over or suspended",
    )
    suspended_until: datetime | None = var(
        "`datetime \\| None` (UTC): the end of the suspension; set for `seller_suspended`, "
        "`None` for the other keys",
        "end of the suspension (datetime) or None",
    )
    grace_ends: datetime = var(
        "`datetime` (UTC): when the tier was entered + `policy.grace_days`. Meaningful for "
        "`seller_rate_alert` (still over then → suspension), and for `seller_reinstated` when "
        "`tier` is `over`; for the other keys it is computed the same way but means nothing",
        "when a seller still over the threshold is suspended (datetime)",
    )
    now: datetime = var(
        "`datetime` (UTC): the time of the evaluation", "the time of the evaluation (datetime)"
    )


@dataclass(frozen=True, slots=True)
class LoginLinkEmail:
    """A seller's sign-in link (``services.accounts.request_login_link``)."""

    seller: SellerVars
    login_url: str = var(
        "`str` (URL): the signed, single-use sign-in link to the order list", "the signed link"
    )
    valid_minutes: int = var("`int`: how long the link is valid, in minutes", "15")


@dataclass(frozen=True, slots=True)
class SellerUnreachableEmail(SaleEmail):
    """To customer service: the seller's order email (or reminder) bounced for good, so the
    sale would expire unseen. Sent once per suppression."""

    bounce: BounceVars


@dataclass(frozen=True, slots=True)
class MessageVars:
    """A message of the sale's conversation, as the writer wrote it (the new text of an email
    reply, or a form's text)."""

    author: str = var("`str`: `seller`, `buyer` or `support` (customer service)")
    body: str = var(
        "`str`: the words, plain text (up to 10,000 characters, may contain line breaks and "
        "`<`; show it as text)"
    )
    at: datetime = var("`datetime` (UTC)")


@dataclass(frozen=True, slots=True)
class ConversationEmail:
    """A message of the sale's conversation, relayed to the other party. Neither party's
    address is in it: answers go back through the email's own ``Reply-To``."""

    sale: SaleVars
    order: OrderVars
    message: MessageVars
    seller_name: str = var("`str`: the seller's name", "the seller's name")
    buyer_name: str = var("`str`: the buyer's name", "the buyer's name")


@dataclass(frozen=True, slots=True)
class CommandVars:
    action: str = var("`str`: `refuse` or `accept`, what the seller's reply asked")
    outcome: str = var(
        "`str`: `done` (carried out now), `already` (the sale was already there: nothing "
        "changed), `impossible` (the sale's state does not allow it: `sale.status` says why)"
    )


@dataclass(frozen=True, slots=True)
class CommandResultEmail(SaleOrderEmail):
    """The answer to a seller's email command (``REFUSER``, ``ACCEPTER``…): the sale as it
    now is, what was asked and what came of it, and the links to act otherwise."""

    command: CommandVars


Context = (
    SaleOrderEmail
    | SaleChangeEmail
    | SellerCancelEmail
    | TierEmail
    | LoginLinkEmail
    | SellerUnreachableEmail
    | ConversationEmail
    | CommandResultEmail
)


@cache
def groups(kind: type) -> tuple[tuple[str, type | None], ...]:
    """The variables of a context class, each with its group's class (None for a scalar)."""
    hints = get_type_hints(kind)
    return tuple(
        (f.name, hints[f.name] if is_dataclass(hints[f.name]) else None) for f in fields(kind)
    )


def as_context(value: Any) -> dict[str, Any]:
    """The context as templates get it: groups as dicts (the values are not copied)."""
    return {
        name: getattr(value, name) if group is None else as_context(getattr(value, name))
        for name, group in groups(value.__class__)
    }


def variables(kind: type) -> dict[str, str]:
    """The variable list an editor sees: a group's fields, or a scalar's short description."""
    return {
        f.name: (f.metadata["short"] if group is None else ", ".join(g.name for g in fields(group)))
        for f, (_name, group) in zip(fields(kind), groups(kind), strict=True)
    }
