"""What the services need from the running system, built by ``mailflow.bootstrap``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mailflow.clock import Clock
from mailflow.config import PolicySettings, WebhookSettings
from mailflow.inbound.addresses import AddressBook
from mailflow.inbound.sender import Trust
from mailflow.links import LinkSigner
from mailflow.mail.outbox import Outbox
from mailflow.mail.overrides import OverrideStore
from mailflow.mail.templates import Renderer
from mailflow.payments import PaymentGateway
from mailflow.services.ports import LoginStore, StandingStore, UnitOfWork, WebhookEventStore
from mailflow.store import logins, standings, webhooks
from mailflow.store.history import History
from mailflow.store.listings import Listings
from mailflow.store.messages import Messages
from mailflow.store.sellers import Sellers
from mailflow.store.templates import TemplateVersions
from mailflow.telemetry import Telemetry


@dataclass
class SweepMemory:
    """Where this process's last policy sweep left the window (for incremental sweeps)."""

    window_since: datetime | None = None
    incremental_sweeps: int = 0


@dataclass(frozen=True)
class ServiceContext:
    db: UnitOfWork
    outbox: Outbox
    signer: LinkSigner
    policy: PolicySettings
    clock: Clock
    base_url: str
    support_address: str
    seller_support_address: str
    payments: PaymentGateway
    renderer: Renderer
    overrides: OverrideStore
    # The stores the services read and write through (unit tests give in-memory ones).
    listings: Listings
    sellers: Sellers
    messages: Messages
    history: History
    template_versions: TemplateVersions
    sweep_memory: SweepMemory = field(default_factory=lambda: SweepMemory())
    telemetry: Telemetry = field(default_factory=lambda: Telemetry())
    standings: StandingStore = field(default=standings)
    logins: LoginStore = field(default=logins)
    addresses: AddressBook | None = None
    """The signed ``bounce+``/``reply+`` addresses at ``inbound.domain``."""
    verp: bool = False
    """``inbound.enabled``: outgoing mail's envelope sender is its ``bounce+`` address."""
    reply_trust: Trust = field(default_factory=lambda: Trust(("127.0.0.1/32", "::1/128"), ""))
    """What the sender check of a reply believes (``inbound.trusted_relays``, …)."""
    webhooks: WebhookEventStore = field(default=webhooks)
    webhook_settings: WebhookSettings = field(default_factory=WebhookSettings)

    def action_url(self, sale_id: int, action: str) -> str:
        return f"{self.base_url}/s/{self.signer.sale_token(sale_id, action)}"
