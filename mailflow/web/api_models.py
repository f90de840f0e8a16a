"""What the JSON API answers: one pydantic model per body, so that the OpenAPI document types
every answer (and FastAPI checks each one against it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

EmailOut = Annotated[str, WithJsonSchema({"type": "string", "format": "email"})]
Amount = Annotated[
    str,
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$", "examples": ["12.50"]}),
]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SellerOut(_Out):
    id: int = Field(examples=[7])
    name: str = Field(examples=["Librairie Dupont"])
    email: EmailOut = Field(examples=["vendeur@librairie-dupont.example"])
    locale: str = Field(examples=["fr"])
    created_at: datetime
    suspended_until: datetime | None


class CountedSale(_Out):
    id: int
    order_id: int
    title: str
    status: str
    reason: str | None
    created_at: datetime


class StatsOut(_Out):
    seller_id: int
    rate: float = Field(
        examples=[0.04], description="cancelled (and refused, if counted) / counted"
    )
    tier: Literal["ok", "warning", "over", "suspended"]
    tier_since: datetime | None
    counted: int
    cancelled: int
    refused: int
    withdrawn: int
    window_days: float
    min_sales: int
    threshold: float = Field(examples=[0.05])
    warning_at: float
    count_refusals: bool
    suspended_until: datetime | None
    sales: list[CountedSale]


class OrderSale(_Out):
    id: int
    seller_id: int
    status: str = Field(examples=["pending"])


class OrderOut(_Out):
    order_id: int
    external_id: str = Field(examples=["MKT-2026-000123"])
    sales: list[OrderSale]


class PaymentOut(_Out):
    state: str | None = Field(examples=["captured"])
    amount: Amount | None
    refunded: Amount | None
    commission: Amount | None
    payout: Amount | None


class EventOut(_Out):
    model_config = ConfigDict(populate_by_name=True)

    action: str = Field(examples=["accept"])
    from_: str | None = Field(alias="from", serialization_alias="from", examples=["pending"])
    to: str = Field(examples=["accepted"])
    actor: str = Field(examples=["seller"])
    channel: str = Field(examples=["email"])
    reason: str | None
    note: str | None
    at: datetime


class SaleOut(_Out):
    id: int
    order_id: int
    seller_id: int
    sku: str
    title: str
    quantity: int
    amount: Amount
    currency: str = Field(examples=["EUR"])
    status: str = Field(examples=["accepted"])
    reason: str | None
    created_at: datetime
    updated_at: datetime
    payment: PaymentOut
    events: list[EventOut]


class BounceOut(_Out):
    status: str = Field(examples=["5.1.1"], description="the DSN's status code")
    diagnostic: str = Field(examples=["smtp; 550 5.1.1 mailbox unknown"])


class SaleEmailOut(_Out):
    key: str = Field(examples=["seller_new_sale"])
    to: EmailOut
    status: Literal["queued", "sent", "dead", "bounced", "suppressed"]
    message_id: str = Field(examples=["<mf.42.1a2b3c@marketplace.example>"])
    bounce: BounceOut | None


class SaleDetailOut(SaleOut):
    emails: list[SaleEmailOut] = Field(description="the sale's emails and their delivery state")


class SaleChangeOut(SaleOut):
    changed: bool = Field(description="false: the sale was in that state already")


class ListingOut(_Out):
    seller_id: int
    sku: str
    title: str
    stock: int | None = Field(description="null: not tracked")
    active: bool
    updated_at: datetime


class TemplateRow(_Out):
    key: str = Field(examples=["seller_new_sale"])
    locale: str = Field(examples=["fr"])
    published_version: int
    latest_version: int
    default_changed: bool


class DraftRow(_Out):
    version: int
    author: str | None
    created_at: datetime
    published: bool


class TemplateOut(_Out):
    key: str
    locale: str
    version: int = Field(description="0: the shipped default")
    published_version: int
    subject: str
    text: str
    html: str
    variables: dict[str, Any]
    requires: list[str]
    drafts: list[DraftRow]
    default_changed: bool


class VersionOut(_Out):
    version: int


class DiffOut(_Out):
    key: str
    locale: str
    version: int
    default_changed: bool
    diff: dict[str, str]


class RenderedOut(_Out):
    subject: str
    text: str
    html: str


class QueuedOut(_Out):
    queued: int = Field(description="the outbox message's id")
    to: EmailOut


class HealthOut(_Out):
    status: str = Field(examples=["ok"])
