"""In-memory stores for the read-side services (listings, sellers, the console's mail, template
versions), and a service context made of them, for unit tests that need no database.

Each fake keeps its rows in plain lists and dicts and answers as the real store does (same
types, same order, same "None when absent"), so a test checks the service's rules, not SQL.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from mailflow.config import PolicySettings
from mailflow.mail.templates import Renderer, TemplateSource, templates_root
from mailflow.services.context import ServiceContext
from mailflow.store.history import SaleStart, StatusChange, StatusHistory
from mailflow.store.listings import Listing, Restock
from mailflow.store.messages import (
    Attempt,
    InboxEntry,
    InboxMessage,
    OutboxEntry,
    OutboxMessage,
    SaleMail,
    Slice,
)
from mailflow.store.sellers import DuplicateSeller, SellerProfile
from mailflow.store.templates import Draft, TemplateVersion, VersionInfo
from tests.support import MovableClock


class FakeListings:
    def __init__(self, *listings: Listing) -> None:
        self.rows = {(listing.seller_id, listing.sku): listing for listing in listings}

    def get(self, seller_id: int, sku: str) -> Listing | None:
        return self.rows.get((seller_id, sku))

    def update(self, seller_id: int, sku: str, change: Restock, at: datetime) -> Listing | None:
        listing = self.rows.get((seller_id, sku))
        if listing is None:
            return None
        if change.set_stock:
            listing = replace(listing, stock=change.stock)
        if change.active is not None:
            listing = replace(listing, active=change.active)
        listing = replace(listing, updated_at=at)
        self.rows[(seller_id, sku)] = listing
        return listing


class FakeSellers:
    def __init__(self) -> None:
        self.rows: dict[int, SellerProfile] = {}

    def create(self, name: str, email: str, locale: str, created_at: datetime) -> SellerProfile:
        if self.by_email(email) is not None:
            raise DuplicateSeller(email)
        seller = SellerProfile(
            len(self.rows) + 1, name, email, locale, created_at, None, "ok", None, 0
        )
        self.rows[seller.id] = seller
        return seller

    def get(self, seller_id: int) -> SellerProfile | None:
        return self.rows.get(seller_id)

    def by_email(self, email: str) -> SellerProfile | None:
        return next((s for s in self.rows.values() if s.email.lower() == email.lower()), None)


def _entry(message: OutboxMessage) -> OutboxEntry:
    return OutboxEntry(
        message.id,
        message.template,
        message.recipient,
        message.subject,
        message.status,
        message.attempts,
        message.last_error,
        message.next_attempt_at,
        message.created_at,
        message.sent_at,
        message.sale_id,
        message.note,
    )


class FakeMessages:
    def __init__(self, *outbox: OutboxMessage, inbox: tuple[InboxMessage, ...] = ()) -> None:
        self.outbox_rows = {message.id: message for message in outbox}
        self.history: dict[int, list[Attempt]] = {}
        self.inbox_rows = {message.id: message for message in inbox}
        self.wakes = 0
        """How many requeues would have woken the delivery worker."""

    def outbox_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for message in self.outbox_rows.values():
            counts[message.status] = counts.get(message.status, 0) + 1
        return counts

    def outbox(self, status: str | None, rows: Slice) -> list[OutboxEntry]:
        newest = sorted(self.outbox_rows.values(), key=lambda m: -m.id)
        shown = [m for m in newest if not status or m.status == status]
        return [_entry(m) for m in shown[rows.offset : rows.offset + rows.limit]]

    def outbox_message(self, message_id: int) -> OutboxMessage | None:
        return self.outbox_rows.get(message_id)

    def mail_about(self, sale_id: int) -> list[SaleMail]:
        return [
            SaleMail(m.id, m.template, m.recipient, m.status, m.created_at)
            for m in sorted(self.outbox_rows.values(), key=lambda m: m.id)
            if m.sale_id == sale_id
        ]

    def requeue(self, message_id: int, at: datetime, *, only_from: str, to: str) -> str | None:
        message = self.outbox_rows.get(message_id)
        if message is None:
            return None
        if message.status != only_from:
            return message.status
        self.outbox_rows[message_id] = replace(
            message, status=to, next_attempt_at=at, created_at=at, attempts=0, lease_until=None
        )
        since = message.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        detail = f"after {message.attempts} attempt(s) since {since}"
        self.history.setdefault(message_id, []).append(Attempt(at, "retried", detail))
        self.wakes += 1
        return only_from

    def attempts(self, message_id: int) -> list[Attempt]:
        return list(self.history.get(message_id, []))

    def has_inbox(self) -> bool:
        return bool(self.inbox_rows)

    def inbox(self, rows: Slice, search: str = "") -> list[InboxEntry]:
        words = search.lower().split()
        newest = [
            m
            for m in sorted(self.inbox_rows.values(), key=lambda m: -m.id)
            if all(w in m.rcpt_to.lower() or w in m.subject.lower() for w in words)
        ]
        return [
            InboxEntry(m.id, m.received_at, m.mail_from, m.rcpt_to, m.subject)
            for m in newest[rows.offset : rows.offset + rows.limit]
        ]

    def inbox_message(self, message_id: int) -> InboxMessage | None:
        return self.inbox_rows.get(message_id)

    def clear_inbox(self) -> int:
        count = len(self.inbox_rows)
        self.inbox_rows.clear()
        return count


class FakeHistory:
    """Sales' creations and status changes, for the seller's rate over time."""

    def __init__(self) -> None:
        self.sales: list[tuple[int, SaleStart]] = []
        self.changes: list[StatusChange] = []

    def add_sale(self, seller_id: int, sale_id: int, created_at: datetime) -> None:
        self.sales.append((seller_id, SaleStart(sale_id, created_at)))

    def change(self, sale_id: int, at: datetime, to_status: str) -> None:
        self.changes.append(StatusChange(sale_id, at, to_status))

    def status_history(self, seller_id: int, since: datetime) -> StatusHistory:
        starts = sorted(
            (s for owner, s in self.sales if owner == seller_id and s.created_at >= since),
            key=lambda s: (s.created_at, s.id),
        )
        ids = {s.id for s in starts}
        changes = sorted(
            (c for c in self.changes if c.sale_id in ids),
            key=lambda c: (c.sale_id, c.at),
        )
        return StatusHistory(starts, changes)


class FakeTemplateVersions:
    def __init__(self) -> None:
        self.versions_by_key: dict[tuple[str, str], list[TemplateVersion]] = {}
        self.live: dict[tuple[str, str], int] = {}

    def published(self) -> dict[tuple[str, str], int]:
        return dict(self.live)

    def published_version(self, key: str, locale: str) -> int:
        return self.live.get((key, locale), 0)

    def latest(self) -> dict[tuple[str, str], int]:
        return {where: rows[-1].version for where, rows in self.versions_by_key.items() if rows}

    def get(self, key: str, locale: str, version: int) -> TemplateVersion | None:
        for row in self.versions_by_key.get((key, locale), []):
            if row.version == version:
                return row
        return None

    def versions(self, key: str, locale: str) -> list[VersionInfo]:
        return [
            VersionInfo(r.version, r.author, r.created_at)
            for r in self.versions_by_key.get((key, locale), [])
        ]

    def add(self, key: str, locale: str, draft: Draft) -> int:
        rows = self.versions_by_key.setdefault((key, locale), [])
        version = len(rows) + 1
        rows.append(TemplateVersion(key=key, locale=locale, version=version, **vars(draft)))
        return version

    def publish(self, key: str, locale: str, version: int, at: datetime) -> None:
        self.live[(key, locale)] = version


class FakeOverrides:
    """What the renderer reads as published, from the fake versions, and the cache the
    services clear (``invalidations`` counts the clears)."""

    def __init__(self, versions: FakeTemplateVersions) -> None:
        self.versions = versions
        self.invalidations = 0

    def published(self, key: str, locale: str, session: Any = None) -> TemplateSource | None:
        version = self.versions.published_version(key, locale)
        row = self.versions.get(key, locale, version) if version else None
        return None if row is None else TemplateSource(row.subject, row.text, row.html, version)

    def invalidate(self) -> None:
        self.invalidations += 1


def context(
    *,
    clock: MovableClock | None = None,
    policy: PolicySettings | None = None,
    listings: FakeListings | None = None,
    sellers: FakeSellers | None = None,
    messages: FakeMessages | None = None,
    history: FakeHistory | None = None,
    template_versions: FakeTemplateVersions | None = None,
) -> ServiceContext:
    """A service context of in-memory stores; parts a test does not name are absent (None):
    a service that reaches for one fails the test."""
    versions = template_versions or FakeTemplateVersions()
    overrides = FakeOverrides(versions)
    absent: Any = None
    return ServiceContext(
        db=absent,
        outbox=absent,
        signer=absent,
        policy=policy or PolicySettings(),
        clock=clock or MovableClock(),
        base_url="https://mailflow.example",
        support_address="support@market.example",
        seller_support_address="sellers@market.example",
        payments=absent,
        renderer=Renderer(templates_root(), "Europe/Paris", overrides),
        overrides=overrides,  # type: ignore[arg-type]
        listings=listings or FakeListings(),  # type: ignore[arg-type]
        sellers=sellers or FakeSellers(),  # type: ignore[arg-type]
        messages=messages or FakeMessages(),  # type: ignore[arg-type]
        history=history or absent,
        template_versions=versions,  # type: ignore[arg-type]
    )
