"""Builds the running system from settings: the only place where the parts are wired."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailflow.clock import Clock, system_clock
from mailflow.config import ConfigError, Settings, SmtpSettings
from mailflow.inbound.addresses import AddressBook
from mailflow.inbound.sender import Trust
from mailflow.links import LinkSigner
from mailflow.mail.delivery import DeliveryWorker, SmtpTarget
from mailflow.mail.dkim import DkimError, DkimSigner
from mailflow.mail.outbox import Outbox
from mailflow.mail.overrides import OverrideStore
from mailflow.mail.templates import Renderer, templates_root
from mailflow.payments import Ledger
from mailflow.services.context import ServiceContext
from mailflow.services.inbound import KINDS
from mailflow.store import migrate
from mailflow.store.database import Database
from mailflow.store.history import History
from mailflow.store.listings import Listings
from mailflow.store.messages import Messages
from mailflow.store.migrate import DatabaseUnreachable as DatabaseUnreachable
from mailflow.store.migrate import SchemaBehind as SchemaBehind
from mailflow.store.outbox import OutboxStore
from mailflow.store.sellers import Sellers
from mailflow.store.templates import TemplateVersions
from mailflow.store.webhooks import WebhookStore
from mailflow.supervisor import Supervisor
from mailflow.telemetry import Telemetry
from mailflow.webhooks.delivery import WebhookWorker, support_notice


@dataclass
class System:
    settings: Settings
    db: Database
    clock: Clock
    renderer: Renderer
    signer: LinkSigner
    outbox: Outbox
    outbox_store: OutboxStore
    services: ServiceContext
    templates: Path
    telemetry: Telemetry
    supervisor: Supervisor
    """Runs the long-running tasks (delivery, sweeper, wake-up, ...) and knows their state."""

    def delivery_worker(self, **overrides: object) -> DeliveryWorker:
        """A delivery worker for this system; commits that queue mail wake it."""
        smtp = self.settings.smtp
        host, port = self.settings.smtp_target
        relay = smtp.mode == "relay"
        target = SmtpTarget(
            host=host,
            port=port,
            tls=smtp.tls if relay else "none",
            ca_file=smtp.tls_ca_file if relay else "",
            username=smtp.username if relay else "",
            password=smtp.password if relay else "",
            timeout=smtp.timeout_seconds,
        )
        options: dict[str, object] = {
            "return_path": self.services.addresses.bounce_address
            if self.services.verp and self.services.addresses is not None
            else None,
            "concurrency": smtp.concurrency,
            "retry_base_seconds": smtp.retry_base_seconds,
            "give_up_after_hours": smtp.give_up_after_hours,
            "supervisor": self.supervisor,
            "telemetry": self.telemetry,
            **overrides,
        }
        worker = DeliveryWorker(self.outbox_store, target, self.clock, **options)  # type: ignore[arg-type]
        self.db.on_mail_queued(worker.wake)
        return worker

    def webhook_worker(self, **overrides: object) -> WebhookWorker:
        """A webhook worker for this system; commits that queue deliveries wake it."""
        hooks = self.settings.webhooks
        smtp = self.settings.smtp
        store = WebhookStore(self.db, hooks.lease_seconds, hooks.disable_after_hours)
        options: dict[str, object] = {
            "allow_http": hooks.allow_http,
            "allow_private_networks": hooks.allow_private_networks,
            "timeout_seconds": hooks.timeout_seconds,
            "retry_base_seconds": hooks.retry_base_seconds,
            "give_up_after_hours": hooks.give_up_after_hours,
            "concurrency": hooks.concurrency,
            **overrides,
        }
        notice = support_notice(smtp.from_address, smtp.support_address, self.clock)
        worker = WebhookWorker(store, self.clock, self.telemetry, notice, **options)  # type: ignore[arg-type]
        self.db.on_webhooks_queued(worker.wake)
        return worker

    def close(self) -> None:
        self.db.dispose()


def dkim_signer(smtp: SmtpSettings) -> DkimSigner | None:
    """The DKIM signer the settings ask for, its key read and tried once; ``ConfigError``
    names the setting at fault."""
    if not smtp.dkim:
        return None
    try:
        return DkimSigner.from_settings(
            smtp.dkim_domain, smtp.dkim_selector, smtp.dkim_private_key_file
        )
    except DkimError as exc:
        raise ConfigError(f"smtp.{exc.setting}: {exc}") from exc


def build(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    db: Database | None = None,
    templates: Path | None = None,
) -> System:
    """The running system; ``templates`` replaces the shipped templates folder (tests).
    Raises ``ConfigError`` for a DKIM key that cannot sign (before anything is opened)."""
    dkim = dkim_signer(settings.smtp)
    db = db or Database.from_url(settings.database.url)
    root = templates or templates_root()
    overrides = OverrideStore(db)
    renderer = Renderer(root, settings.server.timezone, overrides)
    signer = LinkSigner(
        settings.security.secret_keys,
        settings.security.link_max_age_hours * 3600,
        clock=clock,
    )
    outbox = Outbox(renderer, settings.smtp.from_address, clock, dkim=dkim)
    telemetry = Telemetry()
    addresses = AddressBook(settings.security.secret_keys, settings.inbound.domain, list(KINDS))
    services = ServiceContext(
        db=db,
        outbox=outbox,
        signer=signer,
        policy=settings.policy,
        clock=clock,
        base_url=settings.server.base_url,
        support_address=settings.smtp.support_address,
        seller_support_address=settings.smtp.seller_support_address,
        payments=Ledger(),
        renderer=renderer,
        overrides=overrides,
        listings=Listings(db),
        sellers=Sellers(db),
        messages=Messages(db),
        history=History(db),
        template_versions=TemplateVersions(db),
        telemetry=telemetry,
        addresses=addresses,
        verp=settings.inbound.enabled,
        reply_trust=Trust(
            tuple(settings.inbound.trusted_relays),
            settings.inbound.authserv_id,
            settings.inbound.require_dmarc,
        ),
        webhook_settings=settings.webhooks,
    )

    def count_suppressed(templates: list[str]) -> None:
        for template in templates:
            telemetry.emails_total.labels(template, "suppressed").inc()

    return System(
        settings=settings,
        db=db,
        clock=clock,
        renderer=renderer,
        signer=signer,
        outbox=outbox,
        outbox_store=OutboxStore(db, settings.smtp.lease_seconds, on_suppressed=count_suppressed),
        services=services,
        templates=root,
        telemetry=telemetry,
        supervisor=Supervisor(telemetry),
    )


def ensure_schema(system: System) -> None:
    """A SQLite database is brought up to date by itself; PostgreSQL must already be, since
    several processes share it and migrating is an operator's deliberate step. Raises
    ``SchemaBehind`` or ``DatabaseUnreachable``."""
    migrate.ensure_current(
        system.db.engine, system.settings.database.url, bring_up_to_date=system.db.is_sqlite
    )


def upgrade_schema(system: System) -> str | None:
    """Apply the migrations not yet applied; the revision the database is then at."""
    return migrate.upgrade_to_head(system.db.engine, system.settings.database.url)
