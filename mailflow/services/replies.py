"""The ``reply`` kind of inbound address: a sale's conversation, for one of its parties.

At ``RCPT TO`` (``check``): the (signed) payload must be a conversation's. When the message is in
(``receive``, in the transaction that keeps it), in this order:

1. an automatic message (RFC 3834 and the common signs, ``inbound.autoreply``) is
   ``ignored``: never relayed, never answered;
2. the sender check (``inbound.sender``): the ``From`` address is the party's, and a trusted
   relay's DMARC verdict, if there is one (or must be one), is ``pass``; else ``rejected``
   with the reason, relayed to nobody, answered to nobody (the sender may be forged);
3. the new text (``inbound.newtext``) joins the conversation (``services.conversation``):
   ``relayed`` to the other party, or carried out as a ``command``; ``empty`` when there is
   nothing new in it, ``duplicate`` when the same email already joined.
"""

from __future__ import annotations

from mailflow.domain.conversation import Author
from mailflow.inbound.addresses import Address, UnknownAddress
from mailflow.inbound.autoreply import is_auto_reply
from mailflow.inbound.newtext import new_text
from mailflow.inbound.replyto import token_of
from mailflow.inbound.sender import check as sender_check
from mailflow.services import conversation
from mailflow.services.context import ServiceContext
from mailflow.services.errors import NotFound
from mailflow.services.received import Received, Verdict
from mailflow.services.sales import facts_of
from mailflow.store.database import Transaction

MAX_SOURCE = 255


def check(ctx: ServiceContext, address: Address) -> None:
    """``UnknownAddress`` unless the payload is a conversation's. No database work: it runs
    on the server's event loop, and a well-signed token names a sale mailflow made (sales
    are never deleted; ``receive`` still answers ``unknown`` for one that is not there)."""
    try:
        token_of(address.payload)
    except ValueError as exc:
        raise UnknownAddress("no such conversation") from exc


def _source(received: Received) -> str | None:
    """The email's Message-ID, as a key only (never written into another email)."""
    try:
        value = received.message.get("Message-ID")
    except Exception:  # a header too broken for the parser: no key, no de-duplication
        return None
    text = "".join(str(value or "").split())
    return text[:MAX_SOURCE] or None


def receive(ctx: ServiceContext, tx: Transaction, received: Received) -> Verdict:
    try:
        token = token_of(received.address.payload)
    except ValueError:
        return Verdict("unknown", "not a conversation address")
    try:
        about = facts_of(tx, token.sale_id)
    except NotFound:
        return Verdict("unknown", "no such sale")
    sale_id = about.sale.id
    automatic = is_auto_reply(received.message, received.mail_from)
    if automatic is not None:
        return Verdict("ignored", f"automatic message ({automatic})", sale_id=sale_id)
    party = about.seller if token.party is Author.SELLER else about.buyer
    failure = sender_check(received.message, party.email, received.peer, ctx.reply_trust)
    if failure is not None:
        return Verdict("rejected", failure.value, sale_id=sale_id)
    text = new_text(received.message)
    taken, detail = conversation.take_reply(
        ctx,
        tx,
        sale_id,
        token.party,
        text,
        commands=token.commands,
        source=_source(received),
    )
    became = {
        conversation.Taken.RELAYED: f"message from the {token.party.value}, relayed",
        conversation.Taken.COMMAND: f"email command, {detail}",
        conversation.Taken.EMPTY: "nothing new in the reply",
        conversation.Taken.DUPLICATE: "already received",
    }[taken]
    return Verdict(taken.value, "", became, sale_id=sale_id)
