"""SQLModel tables. Times are naive UTC; money is integer cents in the sale's currency."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlmodel import Field, SQLModel


def table(model: type[SQLModel]) -> Table:
    """A model's table, typed (SQLModel declares ``__table__`` only at run time)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


class Seller(SQLModel, table=True):
    __tablename__ = "sellers"
    # One seller per address, whatever its case: a retried POST /sellers finds the first.
    __table_args__ = (Index("uq_sellers_email_lower", func.lower(text("email")), unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320, index=True)
    locale: str = Field(default="fr", max_length=8)
    created_at: datetime
    suspended_until: datetime | None = None
    tier: str = Field(default="ok", max_length=16)
    tier_since: datetime | None = None
    tier_version: int = 0


class Buyer(SQLModel, table=True):
    __tablename__ = "buyers"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str = Field(max_length=200)
    locale: str = Field(default="fr", max_length=8)
    created_at: datetime


class Listing(SQLModel, table=True):
    __tablename__ = "listings"
    __table_args__ = (UniqueConstraint("seller_id", "sku", name="uq_listings_seller_sku"),)

    id: int | None = Field(default=None, primary_key=True)
    seller_id: int = Field(foreign_key="sellers.id")
    sku: str = Field(max_length=100)
    title: str = Field(max_length=300)
    stock: int | None = None
    active: bool = True
    updated_at: datetime


class Order(SQLModel, table=True):
    __tablename__ = "orders"

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(max_length=200, unique=True)
    idempotency_key: str | None = Field(default=None, max_length=200, unique=True)
    request_hash: str = Field(max_length=64)
    buyer_id: int = Field(foreign_key="buyers.id", index=True)
    currency: str = Field(default="EUR", max_length=3)
    created_at: datetime


class Sale(SQLModel, table=True):
    __tablename__ = "sales"
    __table_args__ = (
        Index("ix_sales_seller_created", "seller_id", "created_at", "status"),
        Index("ix_sales_status_created", "status", "created_at"),
        Index("ix_sales_created_seller", "created_at", "seller_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    seller_id: int = Field(foreign_key="sellers.id")
    listing_id: int = Field(foreign_key="listings.id")
    sku: str = Field(max_length=100)
    title: str = Field(max_length=300)
    quantity: int
    unit_price_cents: int = Field(sa_type=BigInteger)
    amount_cents: int = Field(sa_type=BigInteger)
    currency: str = Field(default="EUR", max_length=3)
    status: str = Field(default="pending", max_length=16)
    reason: str | None = Field(default=None, max_length=32)
    message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime
    updated_at: datetime
    reminder_sent_at: datetime | None = None


class SaleEvent(SQLModel, table=True):
    __tablename__ = "sale_events"

    id: int | None = Field(default=None, primary_key=True)
    sale_id: int = Field(foreign_key="sales.id", index=True)
    action: str = Field(max_length=16)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    actor: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    at: datetime


class Payment(SQLModel, table=True):
    __tablename__ = "payments"

    sale_id: int = Field(foreign_key="sales.id", primary_key=True)
    state: str = Field(default="authorized", max_length=16)
    amount_cents: int = Field(sa_type=BigInteger)
    refunded_cents: int = Field(default=0, sa_type=BigInteger)
    commission_cents: int = Field(default=0, sa_type=BigInteger)
    payout_cents: int = Field(default=0, sa_type=BigInteger)
    currency: str = Field(default="EUR", max_length=3)
    updated_at: datetime


class LedgerEntry(SQLModel, table=True):
    """One money movement of a sale, as the built-in payment ledger records it."""

    __tablename__ = "ledger_entries"

    id: int | None = Field(default=None, primary_key=True)
    sale_id: int = Field(foreign_key="sales.id", index=True)
    kind: str = Field(max_length=24)
    amount_cents: int = Field(sa_type=BigInteger)
    currency: str = Field(default="EUR", max_length=3)
    at: datetime


class OutboxMessage(SQLModel, table=True):
    """One email to deliver: the complete message, rendered and stored with its cause."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    template: str = Field(max_length=64)
    locale: str = Field(max_length=8)
    sender: str = Field(max_length=320)
    recipient: str = Field(max_length=320)
    subject: str = Field(sa_column=Column(Text, nullable=False))
    message_id: str = Field(max_length=255, unique=True)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sale_id: int | None = Field(default=None, foreign_key="sales.id", index=True)
    status: str = Field(default="queued", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime
    lease_until: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime
    sent_at: datetime | None = None
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """Set when the email was not rendered as asked: a published template that failed, so
    the shipped one was sent."""
    bounce_status: str | None = Field(default=None, max_length=16)
    """The enhanced status code of a bounce (``5.1.1``), when one came back."""
    bounce_diagnostic: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class OutboxAttempt(SQLModel, table=True):
    """What happened to an outbox message, kept across retries: a failed attempt, giving
    up, an admin's retry."""

    __tablename__ = "outbox_attempts"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="outbox.id", index=True)
    at: datetime
    outcome: str = Field(max_length=16)  # "failed", "dead", "retried", "bounced" or "delayed"
    detail: str = Field(sa_column=Column(Text, nullable=False))


class InboxMessage(SQLModel, table=True):
    """A message the embedded SMTP inbox received."""

    __tablename__ = "inbox"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime
    mail_from: str = Field(max_length=320)
    rcpt_to: str = Field(sa_column=Column(Text, nullable=False))
    message_id: str | None = Field(default=None, max_length=255, index=True)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class TemplateVersion(SQLModel, table=True):
    """An admin's version of one email key in one locale (version 0 is the shipped files).

    ``base_*`` keep the shipped default the version was edited from, so that when a release
    changes that default the admin can be shown the difference.
    """

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("key", "locale", "version", name="uq_template_version"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64)
    locale: str = Field(max_length=8)
    version: int
    subject: str = Field(sa_column=Column(Text, nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    html: str = Field(sa_column=Column(Text, nullable=False))
    base_digest: str = Field(max_length=64)
    base_subject: str = Field(sa_column=Column(Text, nullable=False))
    base_text: str = Field(sa_column=Column(Text, nullable=False))
    base_html: str = Field(sa_column=Column(Text, nullable=False))
    author: str = Field(default="", max_length=320)
    created_at: datetime


class TemplatePublication(SQLModel, table=True):
    """Which version of a key is live in a locale (absent or 0: the shipped files)."""

    __tablename__ = "template_publications"

    key: str = Field(max_length=64, primary_key=True)
    locale: str = Field(max_length=8, primary_key=True)
    version: int = 0
    published_at: datetime
    revision: int = 0


class AdminUser(SQLModel, table=True):
    """A customer-service or admin account of the console; the password is an Argon2 hash."""

    __tablename__ = "admin_users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=255)
    created_at: datetime


class WebSession(SQLModel, table=True):
    """A signed-in browser: the cookie carries a random token, the row its SHA-256. Signing
    out deletes the row, so every copy of the cookie ends with it."""

    __tablename__ = "web_sessions"

    digest: str = Field(max_length=64, primary_key=True)
    kind: str = Field(max_length=16)  # "console" or "seller"
    subject_id: int = Field(index=True)
    created_at: datetime
    expires_at: datetime


class LoginLink(SQLModel, table=True):
    """A seller's emailed login link: usable once, until ``expires_at``."""

    __tablename__ = "login_links"

    nonce: str = Field(max_length=64, primary_key=True)
    seller_id: int = Field(foreign_key="sellers.id", index=True)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class InboundMessage(SQLModel, table=True):
    """A message the inbound SMTP server accepted, one row per recipient, with its verdict
    and what it became."""

    __tablename__ = "inbound_messages"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = Field(index=True)
    peer: str = Field(default="", max_length=64)
    mail_from: str = Field(max_length=320)
    rcpt_to: str = Field(max_length=320)
    kind: str = Field(max_length=16)
    size: int
    message_id: str = Field(default="", max_length=255)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    headers: str = Field(sa_column=Column(Text, nullable=False))
    verdict: str = Field(max_length=16, index=True)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    became: str = Field(default="", sa_column=Column(Text, nullable=False))
    """What the message became, in words (``outbox 12 bounced; x@y suppressed``)."""
    outbox_id: int | None = Field(default=None, index=True)
    sale_id: int | None = Field(default=None, index=True)
    spool_id: int | None = Field(default=None, index=True)
    """The id the message had in the spool (``250 2.0.0 Kept as <id>``); the rows of one
    message share it."""


class InboundSpool(SQLModel, table=True):
    """A received message waiting for its recipients' handlers. Committed before the SMTP
    server answers ``250``; removed in the transaction that keeps what the message did (its
    ``inbound_messages`` rows)."""

    __tablename__ = "inbound_spool"

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime
    peer: str = Field(default="", max_length=64)
    mail_from: str = Field(max_length=320)
    recipients: str = Field(sa_column=Column(Text, nullable=False))
    """The envelope recipients mailflow accepted, one per line."""
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    attempts: int = 0
    not_before: datetime = Field(index=True)
    """Not handled before then (a handler that failed is tried again later)."""
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False))


class Suppression(SQLModel, table=True):
    """An address mail is not sent to (a hard bounce), until an admin lifts it."""

    __tablename__ = "suppressions"

    email: str = Field(max_length=320, primary_key=True)
    """Lowercased."""
    reason: str = Field(max_length=32)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    outbox_id: int | None = None
    created_at: datetime


class ConversationMessage(SQLModel, table=True):
    """One message of a sale's conversation between its buyer, its seller and customer
    service: an email reply's new text, or what was written on the portal or the console.

    ``source`` is the Message-ID of the email it came from (never sent anywhere: it only
    keeps the same email, delivered twice, from joining twice)."""

    __tablename__ = "conversation_messages"
    __table_args__ = (
        UniqueConstraint("sale_id", "source", name="uq_conversation_messages_source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    sale_id: int = Field(foreign_key="sales.id", index=True)
    author: str = Field(max_length=16)
    body: str = Field(sa_column=Column(Text, nullable=False))
    channel: str = Field(max_length=16)  # "email", "portal" or "console"
    status: str = Field(max_length=16)  # "relayed" or "command"
    source: str | None = Field(default=None, max_length=255)
    created_at: datetime


class WebhookEndpoint(SQLModel, table=True):
    """A marketplace URL that receives events, signed with its secret (``whsec_…``)."""

    __tablename__ = "webhook_endpoints"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_column=Column(Text, nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    events: str = Field(sa_column=Column(Text, nullable=False))  # a JSON list of type names
    secret: str = Field(max_length=100)
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_until: datetime | None = None
    """Until then, the secret before the last rotation signs too."""
    active: bool = True
    disabled_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    """The first failed attempt since the last delivered one (disable_after_hours)."""
    created_at: datetime


class WebhookEvent(SQLModel, table=True):
    """One event, written in the transaction of the change; ``body`` is what is sent."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("subject", "sequence", name="uq_webhook_event_sequence"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=40, unique=True)
    type: str = Field(max_length=40)
    subject: str = Field(max_length=40)  # "sale:12", "seller:3", "listing:7"
    sequence: int
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime


class WebhookDelivery(SQLModel, table=True):
    """One event to one endpoint: queued until delivered or given up (``failed``)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "endpoint_id", "subject", "sequence"),
    )

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="webhook_endpoints.id")
    event_id: int = Field(foreign_key="webhook_events.id", index=True)
    subject: str = Field(max_length=40)
    sequence: int
    status: str = Field(default="queued", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime
    lease_until: datetime | None = None
    queued_at: datetime
    """When the delivery was queued (or replayed): give_up_after_hours counts from here."""
    delivered_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class WebhookAttempt(SQLModel, table=True):
    """One HTTP request of a delivery and what came back."""

    __tablename__ = "webhook_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhook_deliveries.id", index=True)
    at: datetime
    outcome: str = Field(max_length=16)  # delivered, retry, failed, gone
    status_code: int | None = None
    duration_ms: int
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    response: str = Field(default="", sa_column=Column(Text, nullable=False))
