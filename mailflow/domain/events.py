"""Past-tense facts the services turn into records and emails."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailflow.domain.sales import Action, Actor, Channel, SaleStatus


@dataclass(frozen=True, slots=True)
class SaleCreated:
    sale_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class SaleTransitioned:
    sale_id: int
    action: Action
    source: SaleStatus
    target: SaleStatus
    actor: Actor
    channel: Channel
    at: datetime
    reason: str | None = None
    message: str | None = None
    note: str | None = None


Event = SaleCreated | SaleTransitioned
