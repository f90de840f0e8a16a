"""What the services need from the running system, built by ``mailflow.bootstrap``."""

from __future__ import annotations

from dataclasses import dataclass

from mailflow.clock import Clock
from mailflow.config import PolicySettings
from mailflow.links import LinkSigner
from mailflow.mail.outbox import Outbox
from mailflow.mail.overrides import OverrideStore
from mailflow.mail.templates import Renderer
from mailflow.payments import PaymentGateway
from mailflow.store.database import Database


@dataclass(frozen=True)
class ServiceContext:
    db: Database
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

    def action_url(self, sale_id: int, action: str) -> str:
        return f"{self.base_url}/s/{self.signer.sale_token(sale_id, action)}"
