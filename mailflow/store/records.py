"""What the store hands the services: rows as frozen dataclasses, in their tables' column order.

The hot paths build them positionally from a row (``SaleRecord(*row)``), so the field order is
the table's; ``mailflow.store.sales`` checks it against the tables at import. A change the
service makes to one (a transition's new status) is a ``dataclasses.replace`` of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SaleRecord:
    id: int
    order_id: int
    seller_id: int
    listing_id: int
    sku: str
    title: str
    quantity: int
    unit_price_cents: int
    amount_cents: int
    currency: str
    status: str
    reason: str | None
    message: str | None
    created_at: datetime
    updated_at: datetime
    reminder_sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SellerRecord:
    id: int
    name: str
    email: str
    locale: str
    created_at: datetime
    suspended_until: datetime | None
    tier: str
    tier_since: datetime | None
    tier_version: int


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """What the emails and pages use of an order."""

    id: int
    external_id: str
    buyer_id: int


@dataclass(frozen=True, slots=True)
class BuyerRecord:
    id: int
    name: str
    email: str
    locale: str


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    sale_id: int
    state: str
    amount_cents: int
    refunded_cents: int
    commission_cents: int
    payout_cents: int
    currency: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SaleFacts:
    """A sale with its seller, order, buyer and payment, as one transaction read or left them."""

    sale: SaleRecord
    seller: SellerRecord
    order: OrderRecord
    buyer: BuyerRecord
    payment: PaymentRecord | None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One line of a sale's history."""

    action: str
    from_status: str | None
    to_status: str
    actor: str
    channel: str
    reason: str | None
    note: str | None
    at: datetime
