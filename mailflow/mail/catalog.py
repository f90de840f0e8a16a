"""Every email key: who receives it, the variables it provides, a sample, what it must show.

The sample context of a key has the exact shape the sending code gives it (``services.notify``
and ``services.policy``); it feeds previews, test sends and validation. ``requires`` names what
an edited template cannot drop: a ``seller_new_sale`` without its refuse link, or a
``buyer_sale_cancelled`` without the seller's message, cannot be saved.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_CREATED = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
_NOW = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
_BASE = "https://marketplace.example/s/"

_SALE = {
    "id": 12,
    "title": "Le Petit Prince (édition 1999)",
    "sku": "LPP-1943",
    "quantity": 1,
    "unit_price_cents": 1250,
    "amount_cents": 1250,
    "currency": "EUR",
    "status": "pending",
    "reason": None,
    "message": None,
    "created_at": _CREATED,
    "deadline": _CREATED + timedelta(hours=48),
}
_ORDER = {"id": 3, "external_id": "CMD-2026-0042"}
_SELLER = {"id": 7, "name": "Librairie Dupont", "email": "ventes@librairie-dupont.example"}
_BUYER = {"name": "Éloïse Müller", "email": "eloise@example.org"}
_LINKS = {
    "accept": _BASE + "eyJzIjoxMiwiYSI6ImFjY2VwdCJ9.sample.accept",
    "refuse": _BASE + "eyJzIjoxMiwiYSI6InJlZnVzZSJ9.sample.refuse",
    "view": _BASE + "eyJzIjoxMiwiYSI6InZpZXcifQ.sample.view",
}
_MESSAGE = "Bonjour,\nLe dernier exemplaire a été abîmé pendant l'emballage.\nToutes mes excuses."
_RATE = {
    "value": 2 / 32,
    "threshold": 0.05,
    "warning_at": 0.04,
    "counted": 32,
    "cancelled": 2,
    "refused": 1,
    "withdrawn": 1,
    "window_days": 30,
    "min_sales": 20,
    "count_refusals": False,
}

SALE_VARIABLES = {
    "sale": "id, title, sku, quantity, unit_price_cents, amount_cents, currency, status, "
    "reason, message, created_at, deadline",
    "order": "id, external_id",
    "seller": "id, name, email",
    "buyer": "name, email",
}
TRANSITION_VARIABLES = {
    **SALE_VARIABLES,
    "payment": "state, amount_cents, refunded_cents, commission_cents, currency",
    "event": "actor, channel, at",
}
TIER_VARIABLES = {
    "seller": "id, name, email",
    "rate": "value, threshold, warning_at, counted, cancelled, refused, withdrawn, "
    "window_days, min_sales, count_refusals",
    "tier": "the new tier: ok, warning, over or suspended",
    "suspended_until": "end of the suspension (datetime) or None",
    "grace_ends": "when a seller still over the threshold is suspended (datetime)",
    "now": "the time of the evaluation (datetime)",
}


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
    variables: dict[str, str]
    sample: dict[str, Any]
    requires: tuple[Requirement, ...] = field(default=())

    def sample_context(self) -> dict[str, Any]:
        return copy.deepcopy(self.sample)


def _sale_sample(status: str = "pending", **sale: Any) -> dict[str, Any]:
    return {
        "sale": {**_SALE, "status": status, **sale},
        "order": dict(_ORDER),
        "seller": dict(_SELLER),
        "buyer": dict(_BUYER),
    }


def _transition_sample(status: str, payment: str, actor: str, **sale: Any) -> dict[str, Any]:
    refunded = payment == "refunded"
    cancelled = status == "cancelled"
    return {
        **_sale_sample(status, **sale),
        "payment": {
            "state": payment,
            "amount_cents": 1250,
            "refunded_cents": 1250 if refunded else 0,
            "commission_cents": 125 if cancelled else 0,
            "currency": "EUR",
        },
        "event": {"actor": actor, "channel": "api", "at": _NOW},
    }


def _tier_sample(tier: str, **extra: Any) -> dict[str, Any]:
    return {
        "seller": dict(_SELLER),
        "rate": dict(_RATE),
        "tier": tier,
        "suspended_until": None,
        "grace_ends": _NOW + timedelta(days=7),
        "now": _NOW,
        **extra,
    }


_LINKS_REQUIRED = tuple(
    Requirement(f"links.{name}", ("txt", "html")) for name in ("accept", "refuse", "view")
)
_MESSAGE_REQUIRED = (Requirement("sale.message", ("txt", "html")),)

KINDS: dict[str, EmailKind] = {
    kind.key: kind
    for kind in (
        EmailKind(
            "seller_new_sale",
            "seller",
            "a sale is created",
            {**SALE_VARIABLES, "links": "accept, refuse, view"},
            {**_sale_sample(), "links": dict(_LINKS)},
            _LINKS_REQUIRED,
        ),
        EmailKind(
            "seller_deadline_reminder",
            "seller",
            "a pending sale nears its deadline",
            {**SALE_VARIABLES, "links": "accept, refuse, view"},
            {**_sale_sample(), "links": dict(_LINKS)},
            _LINKS_REQUIRED,
        ),
        EmailKind(
            "buyer_sale_refused",
            "buyer",
            "the seller refused the sale",
            TRANSITION_VARIABLES,
            _transition_sample("refused", "released", "seller", reason="out_of_stock"),
        ),
        EmailKind(
            "buyer_sale_expired",
            "buyer",
            "the sale expired unanswered",
            TRANSITION_VARIABLES,
            _transition_sample("expired", "released", "system"),
        ),
        EmailKind(
            "buyer_sale_accepted",
            "buyer",
            "the seller accepted the sale",
            TRANSITION_VARIABLES,
            _transition_sample("accepted", "captured", "seller"),
        ),
        EmailKind(
            "buyer_sale_cancelled",
            "buyer",
            "the seller cancelled the sale",
            TRANSITION_VARIABLES,
            _transition_sample(
                "cancelled", "refunded", "seller", reason="cannot_ship", message=_MESSAGE
            ),
            _MESSAGE_REQUIRED,
        ),
        EmailKind(
            "support_sale_cancelled",
            "customer service",
            "the seller cancelled the sale: refund to run",
            TRANSITION_VARIABLES,
            _transition_sample(
                "cancelled", "refunded", "seller", reason="cannot_ship", message=_MESSAGE
            ),
        ),
        EmailKind(
            "seller_sale_cancelled",
            "seller",
            "the seller cancelled the sale: confirmation and the new rate",
            {**TRANSITION_VARIABLES, "rate": TIER_VARIABLES["rate"]},
            {
                **_transition_sample(
                    "cancelled", "refunded", "seller", reason="cannot_ship", message=_MESSAGE
                ),
                "rate": dict(_RATE),
            },
        ),
        EmailKind(
            "buyer_withdrawal_confirmed",
            "buyer",
            "customer service recorded the buyer's withdrawal",
            TRANSITION_VARIABLES,
            _transition_sample("withdrawn", "refunded", "support"),
        ),
        EmailKind(
            "seller_rate_warning",
            "seller",
            "the rate enters the warning band",
            TIER_VARIABLES,
            _tier_sample("warning", rate={**_RATE, "value": 1 / 24, "cancelled": 1}),
        ),
        EmailKind(
            "seller_rate_alert",
            "seller",
            "the rate is at or over the threshold",
            TIER_VARIABLES,
            _tier_sample("over"),
        ),
        EmailKind(
            "seller_suspended",
            "seller",
            "the seller stayed over the threshold past the grace period",
            TIER_VARIABLES,
            _tier_sample("suspended", suspended_until=_NOW + timedelta(days=14)),
        ),
        EmailKind(
            "seller_reinstated",
            "seller",
            "a suspension ends",
            TIER_VARIABLES,
            _tier_sample("ok", rate={**_RATE, "value": 1 / 40, "cancelled": 1, "counted": 40}),
        ),
        EmailKind(
            "seller_login_link",
            "seller",
            "a seller asks for a login link to the order list",
            {"seller": "id, name, email", "login_url": "the signed link", "valid_minutes": "15"},
            {
                "seller": dict(_SELLER),
                "login_url": "https://marketplace.example/seller/login/eyJzZWxsZXIiOjd9.sample",
                "valid_minutes": 15,
            },
            (Requirement("login_url", ("txt", "html")),),
        ),
    )
}


def kind(key: str) -> EmailKind:
    try:
        return KINDS[key]
    except KeyError:
        raise KeyError(f"unknown email key {key!r}") from None
