"""The conversation's emails, as ``services.dispatch`` handlers: a message relayed to the
other party (``MessageWritten``), the answer to a seller's email command
(``CommandAnswered``). The ``reply+`` addresses that bring answers back are
``notify.reply_address``'s.

The relayed email's headers are mailflow's own: the ``From`` of every email, the party's
address as stored, a ``Reply-To`` made here. Nothing of the email the message came from
(its ``From``, ``Subject``, ``Message-ID``) is copied into them; its words go in the body,
as text.
"""

from __future__ import annotations

from typing import Any

from mailflow.domain.conversation import Author
from mailflow.domain.events import CommandAnswered, MessageWritten
from mailflow.mail.contexts import (
    CommandResultEmail,
    CommandVars,
    ConversationEmail,
    MessageVars,
    as_context,
)
from mailflow.mail.outbox import Recipient
from mailflow.services import notify
from mailflow.services.context import ServiceContext
from mailflow.store.database import Transaction
from mailflow.store.records import SaleFacts


def _recipient(person: Any) -> Recipient:
    return Recipient(person.name, person.email, person.locale)


def relay(ctx: ServiceContext, tx: Transaction, event: MessageWritten, about: SaleFacts) -> None:
    """Send the message on: a seller's to the buyer, a buyer's to the seller, customer
    service's to both; each with a ``Reply-To`` into the conversation."""
    base = notify.sale_email(ctx, about)
    context = as_context(
        ConversationEmail(
            base.sale,
            base.order,
            MessageVars(author=event.author, body=event.body, at=event.at),
            about.seller.name,
            about.buyer.name,
        )
    )
    author = Author(event.author)
    if author is not Author.BUYER:
        ctx.outbox.queue(
            tx,
            "buyer_seller_message",
            _recipient(about.buyer),
            context,
            sale_id=about.sale.id,
            reply_to=notify.reply_address(ctx, about.sale.id, Author.BUYER),
        )
    if author is not Author.SELLER:
        ctx.outbox.queue(
            tx,
            "seller_buyer_message",
            _recipient(about.seller),
            context,
            sale_id=about.sale.id,
            reply_to=notify.reply_address(ctx, about.sale.id, Author.SELLER),
        )


def command_answered(
    ctx: ServiceContext, tx: Transaction, event: CommandAnswered, about: SaleFacts
) -> None:
    """``seller_command_result`` to the seller: done, already done, or impossible."""
    base = notify.sale_email(ctx, about)
    context = CommandResultEmail(
        base.sale,
        base.order,
        base.seller,
        base.buyer,
        notify.links_of(ctx, about.sale.id),
        ctx.verp and ctx.addresses is not None,
        CommandVars(action=event.action.value, outcome=event.outcome),
    )
    ctx.outbox.queue(
        tx,
        "seller_command_result",
        _recipient(about.seller),
        as_context(context),
        sale_id=about.sale.id,
    )
