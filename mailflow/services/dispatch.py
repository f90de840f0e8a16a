"""Events → side effects: the one place every change's consequences are run.

A service that changes state hands each event to ``dispatch``, inside the transaction of the
change, with what that transaction already read about its subject (a sale with its parties,
or a seller); the handlers registered for the event's type run in order, in the same
transaction, so their effects commit (or roll back) with the change.

Registering a side effect: add its handler to ``HANDLERS``, beside ``notify``'s, for each
event type it follows. A handler is ``handler(ctx, tx, event, about) -> None``. ``webhooks``
queues a delivery per subscribed endpoint; next to come, ``conversation`` (relay messages
between buyer and seller): each is one more entry per event type, never a branch in a
service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mailflow.domain.events import (
    AddressSuppressed,
    CommandAnswered,
    DeadlineNear,
    EmailBounced,
    Event,
    LoginLinkRequested,
    MessageWritten,
    SaleCreated,
    SaleTransitioned,
    SellerReinstated,
    SellerSuspended,
    TierChanged,
    TierEntered,
)
from mailflow.services import notify, relay, webhooks
from mailflow.services.context import ServiceContext
from mailflow.store.database import Transaction
from mailflow.store.records import SaleFacts, SellerRecord

Subject = SaleFacts | SellerRecord | None
"""What the transaction read about the event's subject: ``SaleFacts`` for a sale's events
(as the change left it), the seller's record for a seller's; for a bounced email, the sale
it was about, or None."""

Handler = Callable[[ServiceContext, Transaction, Any, Any], None]

HANDLERS: dict[type[Event], tuple[Handler, ...]] = {
    SaleCreated: (notify.sale_created, webhooks.sale_created),
    SaleTransitioned: (notify.sale_transitioned, webhooks.sale_transitioned),
    DeadlineNear: (notify.deadline_near,),
    TierChanged: (webhooks.tier_changed,),
    TierEntered: (notify.tier_entered,),
    SellerSuspended: (notify.tier_entered,),
    SellerReinstated: (notify.tier_entered,),
    LoginLinkRequested: (notify.login_link_requested,),
    EmailBounced: (webhooks.email_bounced,),
    AddressSuppressed: (notify.address_suppressed,),
    MessageWritten: (relay.relay, webhooks.message_received),
    CommandAnswered: (relay.command_answered,),
}


def dispatch(ctx: ServiceContext, tx: Transaction, events: Iterable[Event], about: Subject) -> None:
    """Run every handler of each event, in order, in the transaction ``tx``."""
    for event in events:
        for handler in HANDLERS[type(event)]:
            handler(ctx, tx, event, about)
