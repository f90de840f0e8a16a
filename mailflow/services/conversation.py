"""A sale's conversation: the buyer, the seller and customer service write; each message is
relayed by email to the other party, with a ``Reply-To`` back into the conversation and
neither party's address.

Messages come from replies by email (``take_reply``, run by the inbound server in the
transaction that keeps the email, once the sender check passed), from the seller portal and
from the console (``write``). Each becomes a ``MessageWritten`` event; the ``relay`` handler
of ``services.dispatch`` queues the emails. A seller's reply to an order email that is a
command (``REFUSER``…) goes through ``services.sales.transition_in`` instead, channel
``email-reply``, and is answered by ``seller_command_result`` (``CommandAnswered``): it is
never relayed to the buyer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mailflow.domain.conversation import MAX_BODY as MAX_BODY
from mailflow.domain.conversation import Author as Author
from mailflow.domain.conversation import MessageStatus, command_of
from mailflow.domain.events import CommandAnswered, MessageWritten
from mailflow.domain.sales import Action, Actor, Channel
from mailflow.services.context import ServiceContext
from mailflow.services.dispatch import dispatch
from mailflow.services.errors import Conflict, InvalidInput, NotFound
from mailflow.services.sales import facts_of, transition_in
from mailflow.store import conversations as store
from mailflow.store.conversations import MessageRecord
from mailflow.store.database import Transaction
from mailflow.store.records import SaleFacts

CHANNEL_EMAIL, CHANNEL_PORTAL, CHANNEL_CONSOLE = "email", "portal", "console"
COMMAND_KEYS = frozenset({"seller_new_sale", "seller_deadline_reminder"})
"""The emails a seller may answer with a command."""


class Taken(StrEnum):
    """What became of a reply that passed the sender check."""

    RELAYED = "relayed"
    COMMAND = "command"
    EMPTY = "empty"
    """Nothing new in it (only the quoted history, or nothing at all): kept, not relayed."""
    DUPLICATE = "duplicate"
    """The same email (its Message-ID) already joined the conversation."""


@dataclass(frozen=True, slots=True)
class MessageView:
    id: int
    author: str
    body: str
    received_at: datetime
    status: str
    channel: str


def _view(record: MessageRecord) -> MessageView:
    return MessageView(
        record.id, record.author, record.body, record.created_at, record.status, record.channel
    )


# --- reading ------------------------------------------------------------------------------


def messages(ctx: ServiceContext, sale_id: int, seller_id: int | None = None) -> list[MessageView]:
    """The sale's conversation, oldest first; with ``seller_id``, ``NotFound`` unless the sale
    is that seller's."""
    with ctx.db.read() as tx:
        about = facts_of(tx, sale_id)
        if seller_id is not None and about.sale.seller_id != seller_id:
            raise NotFound(f"no sale {sale_id}")
        return [_view(record) for record in store.of_sale(tx, sale_id)]


# --- writing ------------------------------------------------------------------------------


def clean_body(text: str) -> str:
    """A form's text as a message: line breaks normalised, no control characters but tabs
    and line breaks; ``InvalidInput`` when blank or over ``MAX_BODY`` characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 for c in text):
        raise InvalidInput("body", "must not contain control characters")
    text = text.strip()
    if not text:
        raise InvalidInput("body", "must not be blank")
    if len(text) > MAX_BODY:
        raise InvalidInput("body", f"must be at most {MAX_BODY} characters")
    return text


def write(
    ctx: ServiceContext, sale_id: int, author: Author, text: str, seller_id: int | None = None
) -> MessageView:
    """The seller (portal, ``seller_id`` given) or customer service (console) writes in the
    sale's conversation; the message is relayed in the same transaction."""
    body = clean_body(text)
    channel = CHANNEL_PORTAL if author is Author.SELLER else CHANNEL_CONSOLE
    with ctx.db.transaction() as tx:
        about = facts_of(tx, sale_id)
        if seller_id is not None and about.sale.seller_id != seller_id:
            raise NotFound(f"no sale {sale_id}")
        record = _add(ctx, tx, about, author, body, channel, MessageStatus.RELAYED, None)
        assert record is not None
        return _view(record)


def _add(
    ctx: ServiceContext,
    tx: Transaction,
    about: SaleFacts,
    author: Author,
    body: str,
    channel: str,
    status: MessageStatus,
    source: str | None,
) -> MessageRecord | None:
    now = ctx.clock()
    record = store.add(
        tx,
        sale_id=about.sale.id,
        author=author.value,
        body=body,
        channel=channel,
        status=status.value,
        at=now,
        source=source,
    )
    if record is not None and status is MessageStatus.RELAYED:
        event = MessageWritten(about.sale.id, record.id, author.value, body, now)
        dispatch(ctx, tx, (event,), about)
    return record


def take_reply(
    ctx: ServiceContext,
    tx: Transaction,
    sale_id: int,
    author: Author,
    text: str,
    *,
    commands: bool,
    source: str | None,
) -> tuple[Taken, str]:
    """A reply by email that passed the sender check, in the inbound transaction ``tx``:
    ``text`` is its new text, ``commands`` whether it answers an order email, ``source`` its
    Message-ID (so a second delivery changes nothing). What became of it, and for a command
    its outcome (``refuse: done``)."""
    about = facts_of(tx, sale_id)
    if source is not None and store.seen(tx, sale_id, source):
        return Taken.DUPLICATE, ""
    text = text.strip()[:MAX_BODY]
    action = command_of(text) if commands and author is Author.SELLER else None
    if action is not None:
        if _add(ctx, tx, about, author, text, CHANNEL_EMAIL, MessageStatus.COMMAND, source) is None:
            return Taken.DUPLICATE, ""
        outcome = _command(ctx, tx, about, action)
        return Taken.COMMAND, f"{action.value}: {outcome}"
    if not text:
        return Taken.EMPTY, ""
    if _add(ctx, tx, about, author, text, CHANNEL_EMAIL, MessageStatus.RELAYED, source) is None:
        return Taken.DUPLICATE, ""
    return Taken.RELAYED, ""


def _command(ctx: ServiceContext, tx: Transaction, about: SaleFacts, action: Action) -> str:
    """The seller's command: the same transition as a click, channel ``email-reply``; its
    outcome (``done``, ``already``, ``impossible``)."""
    try:
        applied = transition_in(
            ctx, tx, about, action, actor=Actor.SELLER, channel=Channel.EMAIL_REPLY
        )
    except Conflict:
        applied = None
        outcome = "impossible"
    else:
        outcome = "impossible" if applied is None else ("done" if applied.changed else "already")
    after = facts_of(tx, about.sale.id) if applied is None else applied.facts
    event = CommandAnswered(about.sale.id, action, outcome, ctx.clock())
    dispatch(ctx, tx, (event,), after)
    return outcome
