"""Every email key: who receives it, the variables it provides, a sample, what it must show.

Each key names its context class (``mail.contexts``) through its sample, an instance of it: the
sending code (``services.notify``) builds the same class, so the sample has the exact shape of
the real context; it feeds previews, test sends and validation. ``requires`` names what
an edited template cannot drop: a ``seller_new_sale`` without its refuse link, or a
``buyer_sale_cancelled`` without the seller's message, cannot be saved.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mailflow.mail import contexts

_CREATED = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
_NOW = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
_BASE = "https://marketplace.example/s/"

_SALE = contexts.SaleVars(
    id=12,
    title="Le Petit Prince (édition 1999)",
    sku="LPP-1943",
    quantity=1,
    unit_price_cents=1250,
    amount_cents=1250,
    currency="EUR",
    status="pending",
    reason=None,
    message=None,
    created_at=_CREATED,
    deadline=_CREATED + timedelta(hours=48),
)
_ORDER = contexts.OrderVars(id=3, external_id="CMD-2026-0042")
_SELLER = contexts.SellerVars(
    id=7, name="Librairie Dupont", email="ventes@librairie-dupont.example"
)
_BUYER = contexts.BuyerVars(name="Éloïse Müller", email="eloise@example.org")
_LINKS = contexts.LinkVars(
    accept=_BASE + "eyJzIjoxMiwiYSI6ImFjY2VwdCJ9.sample.accept",
    refuse=_BASE + "eyJzIjoxMiwiYSI6InJlZnVzZSJ9.sample.refuse",
    view=_BASE + "eyJzIjoxMiwiYSI6InZpZXcifQ.sample.view",
)
_MESSAGE = "Bonjour,\nLe dernier exemplaire a été abîmé pendant l'emballage.\nToutes mes excuses."
_RATE = contexts.RateVars(
    value=2 / 32,
    threshold=0.05,
    warning_at=0.04,
    counted=32,
    cancelled=2,
    refused=1,
    withdrawn=1,
    window_days=30,
    min_sales=20,
    count_refusals=False,
)


@dataclass(frozen=True)
class Requirement:
    """Something an edited template must show, found by its sample value in the render."""

    what: str  # the expression, e.g. "links.refuse"
    parts: tuple[str, ...]  # "txt", "html"

    def sample_value(self, context: dict[str, Any]) -> str:
        value: Any = context
        for name in self.what.split("."):
            value = value[name]
        return str(value)


@dataclass(frozen=True)
class EmailKind:
    key: str
    to: str
    when: str
    example: contexts.Context
    """The sample: an instance of the kind's context class, as the sending code builds one."""
    requires: tuple[Requirement, ...] = field(default=())

    @property
    def context(self) -> type:
        """The context class: what the sending code gives the templates."""
        return type(self.example)

    @property
    def variables(self) -> dict[str, str]:
        return contexts.variables(self.context)

    @property
    def sample(self) -> dict[str, Any]:
        return contexts.as_context(self.example)

    def sample_context(self) -> dict[str, Any]:
        """The sample as templates get it (a fresh copy: callers may change it)."""
        return copy.deepcopy(self.sample)


def _order_sample() -> contexts.SaleOrderEmail:
    return contexts.SaleOrderEmail(_SALE, _ORDER, _SELLER, _BUYER, _LINKS, True)


def _change_sample(status: str, payment: str, actor: str, **sale: Any) -> contexts.SaleChangeEmail:
    refunded = payment == "refunded"
    cancelled = status == "cancelled"
    return contexts.SaleChangeEmail(
        replace(_SALE, status=status, **sale),
        _ORDER,
        _SELLER,
        _BUYER,
        contexts.PaymentVars(
            state=payment,
            amount_cents=1250,
            refunded_cents=1250 if refunded else 0,
            commission_cents=125 if cancelled else 0,
            currency="EUR",
        ),
        contexts.EventVars(actor=actor, channel="api", at=_NOW),
    )


def _cancel_sample() -> contexts.SaleChangeEmail:
    return _change_sample("cancelled", "refunded", "seller", reason="cannot_ship", message=_MESSAGE)


def _tier_sample(
    tier: str, rate: contexts.RateVars = _RATE, suspended_until: datetime | None = None
) -> contexts.TierEmail:
    return contexts.TierEmail(_SELLER, rate, tier, suspended_until, _NOW + timedelta(days=7), _NOW)


def _conversation_sample(author: str, body: str) -> contexts.ConversationEmail:
    return contexts.ConversationEmail(
        replace(_SALE, status="accepted"),
        _ORDER,
        contexts.MessageVars(author=author, body=body, at=_NOW),
        _SELLER.name,
        _BUYER.name,
    )


def _command_sample() -> contexts.CommandResultEmail:
    return contexts.CommandResultEmail(
        replace(_SALE, status="refused", reason="out_of_stock"),
        _ORDER,
        _SELLER,
        _BUYER,
        _LINKS,
        True,
        contexts.CommandVars(action="refuse", outcome="done"),
    )


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in fields(value)}


_LINKS_REQUIRED = tuple(
    Requirement(f"links.{name}", ("txt", "html")) for name in ("accept", "refuse", "view")
)
_MESSAGE_REQUIRED = (Requirement("sale.message", ("txt", "html")),)
_WORDS_REQUIRED = (Requirement("message.body", ("txt", "html")),)

KINDS: dict[str, EmailKind] = {
    kind.key: kind
    for kind in (
        EmailKind(
            "seller_new_sale", "seller", "a sale is created", _order_sample(), _LINKS_REQUIRED
        ),
        EmailKind(
            "seller_deadline_reminder",
            "seller",
            "a pending sale nears its deadline",
            _order_sample(),
            _LINKS_REQUIRED,
        ),
        EmailKind(
            "buyer_sale_refused",
            "buyer",
            "the seller refused the sale",
            _change_sample("refused", "released", "seller", reason="out_of_stock"),
        ),
        EmailKind(
            "buyer_sale_expired",
            "buyer",
            "the sale expired unanswered",
            _change_sample("expired", "released", "system"),
        ),
        EmailKind(
            "buyer_sale_accepted",
            "buyer",
            "the seller accepted the sale",
            _change_sample("accepted", "captured", "seller"),
        ),
        EmailKind(
            "buyer_sale_cancelled",
            "buyer",
            "the seller cancelled the sale",
            _cancel_sample(),
            _MESSAGE_REQUIRED,
        ),
        EmailKind(
            "support_sale_cancelled",
            "customer service",
            "the seller cancelled the sale: refund to run",
            _cancel_sample(),
        ),
        EmailKind(
            "seller_sale_cancelled",
            "seller",
            "the seller cancelled the sale: confirmation and the new rate",
            contexts.SellerCancelEmail(**_fields(_cancel_sample()), rate=_RATE),
        ),
        EmailKind(
            "buyer_withdrawal_confirmed",
            "buyer",
            "customer service recorded the buyer's withdrawal",
            _change_sample("withdrawn", "refunded", "support"),
        ),
        EmailKind(
            "seller_rate_warning",
            "seller",
            "the rate enters the warning band",
            _tier_sample("warning", replace(_RATE, value=1 / 24, cancelled=1)),
        ),
        EmailKind(
            "seller_rate_alert",
            "seller",
            "the rate is at or over the threshold",
            _tier_sample("over"),
        ),
        EmailKind(
            "seller_suspended",
            "seller",
            "the seller stayed over the threshold past the grace period",
            _tier_sample("suspended", suspended_until=_NOW + timedelta(days=14)),
        ),
        EmailKind(
            "seller_reinstated",
            "seller",
            "a suspension ends",
            _tier_sample("ok", replace(_RATE, value=1 / 40, cancelled=1, counted=40)),
        ),
        EmailKind(
            "seller_login_link",
            "seller",
            "a seller asks for a login link to the order list",
            contexts.LoginLinkEmail(
                _SELLER, "https://marketplace.example/seller/login/eyJzZWxsZXIiOjd9.sample", 15
            ),
            (Requirement("login_url", ("txt", "html")),),
        ),
        EmailKind(
            "support_seller_unreachable",
            "customer service",
            "a seller's order email or reminder bounced permanently (once per suppression)",
            contexts.SellerUnreachableEmail(
                _SALE,
                _ORDER,
                _SELLER,
                _BUYER,
                contexts.BounceVars(
                    address=_SELLER.email,
                    email="seller_new_sale",
                    status="5.1.1",
                    diagnostic="550 5.1.1 ventes@librairie-dupont.example: mailbox unknown",
                    at=_NOW,
                ),
            ),
        ),
        EmailKind(
            "buyer_seller_message",
            "buyer",
            "the seller (or customer service) wrote in the sale's conversation",
            _conversation_sample(
                "seller", "Bonjour,\nJe l'expédie demain matin, en lettre suivie.\nBien à vous"
            ),
            _WORDS_REQUIRED,
        ),
        EmailKind(
            "seller_buyer_message",
            "seller",
            "the buyer (or customer service) wrote in the sale's conversation",
            _conversation_sample("buyer", "Bonjour,\nPouvez-vous l'envoyer en point relais ?"),
            _WORDS_REQUIRED,
        ),
        EmailKind(
            "seller_command_result",
            "seller",
            "the seller's email command (REFUSER, ACCEPTER…) was carried out or could not be",
            _command_sample(),
            (Requirement("links.view", ("txt", "html")),),
        ),
    )
}


def kind(key: str) -> EmailKind:
    try:
        return KINDS[key]
    except KeyError:
        raise KeyError(f"unknown email key {key!r}") from None
