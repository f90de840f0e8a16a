"""Past-tense facts: what changed. The services record them and hand each to
``services.dispatch``, whose handlers turn it into side effects (emails first)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailflow.domain.policy import REINSTATED_EMAIL, TIER_EMAILS, Counts, Decision, Standing, Tier
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


@dataclass(frozen=True, slots=True)
class DeadlineNear:
    """A pending sale nears its deadline (the sweeper claimed its one reminder)."""

    sale_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class TierChanged:
    """A seller's standing changed (every change, whether or not it is an entry that is
    announced: a seller back to ``ok`` from ``warning`` hears nothing)."""

    seller_id: int
    before: Standing
    after: Standing
    counts: Counts
    at: datetime


@dataclass(frozen=True, slots=True)
class TierEntered:
    """The seller entered ``tier`` (``warning`` or ``over``) from below."""

    seller_id: int
    tier: Tier
    standing: Standing
    """The standing after the whole change (the same in every event of one evaluation)."""
    counts: Counts
    at: datetime


@dataclass(frozen=True, slots=True)
class SellerSuspended:
    seller_id: int
    standing: Standing
    counts: Counts
    at: datetime


@dataclass(frozen=True, slots=True)
class SellerReinstated:
    """A suspension ended; ``standing`` is where the fresh evaluation put the seller."""

    seller_id: int
    standing: Standing
    counts: Counts
    at: datetime


@dataclass(frozen=True, slots=True)
class LoginLinkRequested:
    """A one-time login link was made for the seller. ``nonce`` is a secret: a handler that
    sends anything outside the system must leave it out."""

    seller_id: int
    nonce: str
    valid_minutes: int
    at: datetime


@dataclass(frozen=True, slots=True)
class EmailBounced:
    """A DSN said an email was refused for good; its outbox row is now ``bounced``."""

    outbox_id: int
    template: str
    recipient: str
    sale_id: int | None
    status: str
    """The enhanced status code, ``5.1.1``."""
    diagnostic: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AddressSuppressed:
    """An address went on the suppression list (once per suppression: a second bounce to
    an address already on it is no new event). ``template`` and ``sale_id``: the email
    whose bounce put it there."""

    email: str
    reason: str
    outbox_id: int
    template: str
    sale_id: int | None
    status: str
    diagnostic: str
    at: datetime


@dataclass(frozen=True, slots=True)
class MessageWritten:
    """A message joined the sale's conversation: an email reply that passed the sender
    check, or what the seller (portal) or customer service (console) wrote."""

    sale_id: int
    message_id: int
    author: str
    """``seller``, ``buyer`` or ``support`` (``domain.conversation.Author``)."""
    body: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CommandAnswered:
    """The seller's email command was carried out, was already done, or is impossible in the
    sale's state (``outcome``: ``done``, ``already``, ``impossible``)."""

    sale_id: int
    action: Action
    outcome: str
    at: datetime


SaleEvent = SaleCreated | SaleTransitioned | DeadlineNear | MessageWritten | CommandAnswered
TierEvent = TierEntered | SellerSuspended | SellerReinstated
SellerEvent = TierChanged | TierEvent | LoginLinkRequested
MailEvent = EmailBounced | AddressSuppressed
Event = SaleEvent | SellerEvent | MailEvent

_ENTERED = {email: tier for tier, email in TIER_EMAILS.items() if email}


def tier_events(
    seller_id: int, before: Standing, decision: Decision, counts: Counts, at: datetime
) -> list[SellerEvent]:
    """The events of a decision that changed the seller's standing: the change, then each
    announced entry in the order it happened (a suspension's end before a new alert)."""
    after = decision.standing
    events: list[SellerEvent] = [TierChanged(seller_id, before, after, counts, at)]
    for email in decision.emails:
        if email == REINSTATED_EMAIL:
            events.append(SellerReinstated(seller_id, after, counts, at))
        elif _ENTERED[email] is Tier.SUSPENDED:
            events.append(SellerSuspended(seller_id, after, counts, at))
        else:
            events.append(TierEntered(seller_id, _ENTERED[email], after, counts, at))
    return events
