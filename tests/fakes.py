"""In-memory stand-ins for the parts the write-side services depend on (``services.ports``):
an outbox that records what it was asked to send, a unit of work without a database, and
stores kept in dicts. The services, the domain, the dispatcher and the link signer are the
real ones; only storage and sending are replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

from mailflow.config import PolicySettings
from mailflow.domain.policy import Counts, Standing
from mailflow.links import LinkSigner
from mailflow.mail.outbox import Recipient
from mailflow.mail.templates import Renderer, templates_root
from mailflow.payments import Ledger
from mailflow.services.context import ServiceContext
from mailflow.store.database import Transaction
from mailflow.store.logins import LinkRecord, UserRecord
from mailflow.store.records import SellerRecord
from tests.fakes_reads import (
    FakeHistory,
    FakeListings,
    FakeMessages,
    FakeOverrides,
    FakeSellers,
    FakeTemplateVersions,
)

NOW = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
SECRET = "unit-secret-" + "k" * 40
BASE_URL = "https://market.example"
SUPPORT = "Service client <support@market.example>"
SELLER_SUPPORT = "Support vendeurs <vendeurs@market.example>"


@dataclass(frozen=True)
class Queued:
    """One email the services asked the outbox for."""

    key: str
    to: Recipient
    context: dict[str, Any]
    sale_id: int | None
    sender: str | None
    test: bool = False
    reply_to: str | None = None


@dataclass
class FakeOutbox:
    sent: list[Queued] = field(default_factory=list)

    def queue(
        self,
        session: Transaction,
        key: str,
        to: Recipient,
        context: dict[str, Any],
        sale_id: int | None = None,
        sender: str | None = None,
        test: bool = False,
        reply_to: str | None = None,
    ) -> int:
        self.sent.append(Queued(key, to, context, sale_id, sender, test, reply_to))
        return len(self.sent)

    @property
    def keys(self) -> list[str]:
        return [q.key for q in self.sent]


class NoWebhooks:
    """No webhook endpoint is registered: the webhook handlers write nothing."""

    def subscribers(self, tx: Transaction) -> list[tuple[int, list[str]]]:
        return []


class FakeTransaction:
    """Stands for a transaction; the fakes keep their state themselves."""


class FakeUnitOfWork:
    def __init__(self) -> None:
        self.commits = 0

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        yield cast(Transaction, FakeTransaction())
        self.commits += 1

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        yield cast(Transaction, FakeTransaction())


@dataclass
class InMemoryStandings:
    """Sellers and the counts of their window (set by the test: no sales are kept)."""

    sellers: dict[int, SellerRecord] = field(default_factory=dict)
    window: dict[int, Counts] = field(default_factory=dict)

    def seller(self, tx: Transaction, seller_id: int) -> SellerRecord | None:
        return self.sellers.get(seller_id)

    def counts(self, tx: Transaction, seller_id: int, since: datetime) -> Counts:
        return self.window.get(seller_id, Counts())

    def set_standing(
        self, tx: Transaction, found: SellerRecord, standing: Standing
    ) -> SellerRecord | None:
        stored = self.sellers[found.id]
        if stored.tier_version != found.tier_version:
            return None
        written = replace(
            stored,
            tier=standing.tier.value,
            tier_since=standing.since,
            suspended_until=standing.suspended_until,
            tier_version=stored.tier_version + 1,
        )
        self.sellers[found.id] = written
        return written


@dataclass
class Link:
    seller_id: int
    expires_at: datetime
    used_at: datetime | None = None


@dataclass
class InMemoryLogins:
    sellers: list[SellerRecord] = field(default_factory=list)
    users: dict[int, UserRecord] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)

    def user_by_email(self, tx: Transaction, email: str) -> UserRecord | None:
        return next((u for u in self.users.values() if u.email == email), None)

    def user(self, tx: Transaction, user_id: int) -> UserRecord | None:
        return self.users.get(user_id)

    def add_user(
        self, tx: Transaction, email: str, role: str, password_hash: str, at: datetime
    ) -> UserRecord:
        made = UserRecord(len(self.users) + 1, email, role, password_hash)
        self.users[made.id] = made
        return made

    def sellers_by_email(self, tx: Transaction, address: str) -> list[SellerRecord]:
        return [s for s in self.sellers if s.email.lower() == address]

    def add_link(
        self, tx: Transaction, nonce: str, seller_id: int, at: datetime, expires_at: datetime
    ) -> None:
        self.links[nonce] = Link(seller_id, expires_at)

    def use_link(self, tx: Transaction, nonce: str, seller_id: int, now: datetime) -> bool:
        link = self.links.get(nonce)
        if link is None or link.seller_id != seller_id or link.used_at or link.expires_at <= now:
            return False
        link.used_at = now
        return True

    def link(self, tx: Transaction, nonce: str) -> LinkRecord | None:
        found = self.links.get(nonce)
        return (
            None if found is None else LinkRecord(found.seller_id, found.expires_at, found.used_at)
        )


def seller(
    seller_id: int = 7,
    *,
    tier: str = "ok",
    since: datetime | None = None,
    until: datetime | None = None,
    email: str = "ventes@librairie-dupont.example",
    locale: str = "fr",
) -> SellerRecord:
    return SellerRecord(seller_id, "Librairie Dupont", email, locale, NOW, until, tier, since, 0)


@dataclass
class Fakes:
    ctx: ServiceContext
    outbox: FakeOutbox
    db: FakeUnitOfWork
    standings: InMemoryStandings
    logins: InMemoryLogins
    clock: list[datetime]

    def at(self, moment: datetime) -> None:
        self.clock[0] = moment


@cache
def _renderer() -> Renderer:
    return Renderer(templates_root(), "Europe/Paris")


def make(policy: PolicySettings | None = None) -> Fakes:
    """Services wired to fakes; the clock stands at ``NOW`` until ``Fakes.at`` moves it."""
    clock = [NOW]
    outbox, db = FakeOutbox(), FakeUnitOfWork()
    standings, logins = InMemoryStandings(), InMemoryLogins()

    def now() -> datetime:
        return clock[0]

    versions = FakeTemplateVersions()
    ctx = ServiceContext(
        db=db,
        outbox=outbox,
        signer=LinkSigner([SECRET], 3600, clock=now),
        policy=policy or PolicySettings(),
        clock=now,
        base_url=BASE_URL,
        support_address="support@market.example",
        seller_support_address=SELLER_SUPPORT,
        payments=Ledger(),
        renderer=_renderer(),
        overrides=FakeOverrides(versions),  # type: ignore[arg-type]
        listings=FakeListings(),  # type: ignore[arg-type]
        sellers=FakeSellers(),  # type: ignore[arg-type]
        messages=FakeMessages(),  # type: ignore[arg-type]
        history=FakeHistory(),  # type: ignore[arg-type]
        template_versions=versions,  # type: ignore[arg-type]
        standings=standings,
        logins=logins,
        webhooks=NoWebhooks(),  # type: ignore[arg-type]
    )
    return Fakes(ctx, outbox, db, standings, logins, clock)
