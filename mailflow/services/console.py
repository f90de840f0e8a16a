"""What the admin console reads and does beyond the other services: sales search, a sale's
parties and mail, the outbox and the embedded inbox, retrying a dead message, and the
difference between a template version and the shipped default.

Every sale state change still goes through ``services.sales.transition``; this module writes
only one thing, a dead outbox row put back in the queue (``retry_message``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mailflow.mail.outbox import DEAD, QUEUED
from mailflow.schemas import MAX_ID
from mailflow.services import sales as sales_service
from mailflow.services import templates
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict, NotFound
from mailflow.store.history import ConsoleSale
from mailflow.store.messages import (
    Attempt,
    InboxEntry,
    InboxMessage,
    OutboxEntry,
    OutboxMessage,
    Slice,
)

PAGE_SIZE = 50
Row = TypeVar("Row")


@dataclass(frozen=True)
class Page(Generic[Row]):
    """One page of a listing; ``has_next`` is known by reading one row more than shown."""

    rows: list[Row]
    page: int
    has_next: bool


def _slice(page: int, size: int) -> Slice:
    return Slice((max(page, 1) - 1) * size, size + 1)


def _page(rows: list[Row], page: int, size: int) -> Page[Row]:
    return Page(rows[:size], page, len(rows) > size)


# --- sales ---------------------------------------------------------------------------------


def search_sales(
    ctx: ServiceContext,
    query: str = "",
    *,
    status: str | None = None,
    seller_id: int | None = None,
    page: int = 1,
    size: int = PAGE_SIZE,
) -> Page[ConsoleSale]:
    """Sales, newest first, matching ``query``: a sale id (``123`` or ``#123``), an order's
    external id (exact or its beginning), words of the title, or the seller's name or email."""
    query = query.strip()
    number = query.removeprefix("#")
    sale_id = (
        int(number) if number.isascii() and number.isdigit() and int(number) <= MAX_ID else None
    )
    rows = ctx.history.search(
        query, sale_id, status=status, seller_id=seller_id, rows=_slice(page, size)
    )
    return _page(rows, page, size)


def sale_detail(ctx: ServiceContext, sale_id: int) -> dict[str, Any]:
    """The sale as the API shows it (payment, events), with its order, seller, buyer and the
    emails queued about it."""
    with ctx.db.read() as tx:
        about = sales_service.facts_of(tx, sale_id)
        view = sales_service.sale_view(tx, about.sale, about.payment)
    seller, buyer = about.seller, about.buyer
    return {
        **view,
        "order": {"id": about.order.id, "external_id": about.order.external_id},
        "seller": {"id": seller.id, "name": seller.name, "email": seller.email},
        "buyer": {"name": buyer.name, "email": buyer.email},
        "mail": ctx.messages.mail_about(sale_id),
    }


# --- outbox --------------------------------------------------------------------------------


def outbox_counts(ctx: ServiceContext) -> dict[str, int]:
    return ctx.messages.outbox_counts()


def list_outbox(
    ctx: ServiceContext, status: str | None = None, *, page: int = 1, size: int = PAGE_SIZE
) -> Page[OutboxEntry]:
    """Outbox rows, newest first, without their bodies."""
    return _page(ctx.messages.outbox(status, _slice(page, size)), page, size)


def outbox_message(ctx: ServiceContext, message_id: int) -> OutboxMessage:
    row = ctx.messages.outbox_message(message_id)
    if row is None:
        raise NotFound(f"no outbox message {message_id}")
    return row


def outbox_attempts(ctx: ServiceContext, message_id: int) -> list[Attempt]:
    """What happened to an outbox message, across retries, oldest first."""
    return ctx.messages.attempts(message_id)


def retry_message(ctx: ServiceContext, message_id: int) -> None:
    """Put a dead message back in the queue, due now, with the same Message-ID and body.

    The worker gives up on a message ``smtp.give_up_after_hours`` after its ``created_at``
    and doubles its retry delay with each attempt, so both are reset: ``created_at`` becomes
    the time of the retry and ``attempts`` 0, giving the retried message a full new retry
    schedule. Nothing is lost: every failed attempt, the giving up and the retry (with the
    schedule it ended) stay in the message's history (``outbox_attempts``), and
    ``last_error`` stays until the message is delivered. A compare-and-set on
    ``status = 'dead'`` makes two retries of one message queue it once.
    """
    status = ctx.messages.requeue(message_id, ctx.clock(), only_from=DEAD, to=QUEUED)
    if status is None:
        raise NotFound(f"no outbox message {message_id}")
    if status != DEAD:
        raise Conflict(
            f"message {message_id} is {status}, not dead: only dead messages are retried",
            code="not_dead",
            status=status,
        )


# --- inbox ---------------------------------------------------------------------------------


def inbox_has_messages(ctx: ServiceContext) -> bool:
    return ctx.messages.has_inbox()


def list_inbox(
    ctx: ServiceContext, *, search: str = "", page: int = 1, size: int = PAGE_SIZE
) -> Page[InboxEntry]:
    """What the embedded inbox received, newest first, without the raw messages; ``search``
    keeps the messages whose recipient or subject holds every one of its words."""
    return _page(ctx.messages.inbox(_slice(page, size), search.strip()), page, size)


def clear_inbox(ctx: ServiceContext) -> int:
    """Empty the embedded inbox (a developer's tool: it holds copies, never the outbox)."""
    return ctx.messages.clear_inbox()


def inbox_message(ctx: ServiceContext, message_id: int) -> InboxMessage:
    row = ctx.messages.inbox_message(message_id)
    if row is None:
        raise NotFound(f"no inbox message {message_id}")
    return row


# --- templates -----------------------------------------------------------------------------


def diff_with_default(ctx: ServiceContext, key: str, locale: str, version: int) -> dict[str, str]:
    """Per part, a unified diff from the shipped default as it is now to ``version``."""
    shipped = templates.show(ctx, key, locale, 0)
    edited = templates.show(ctx, key, locale, version)
    return {
        part: "".join(
            difflib.unified_diff(
                shipped[part].splitlines(keepends=True),
                edited[part].splitlines(keepends=True),
                "shipped default",
                f"version {version}",
            )
        )
        for part in ("subject", "text", "html")
    }
