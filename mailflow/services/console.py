"""What the admin console reads and does beyond the other services: sales search, a sale's
parties and mail, the outbox and the embedded inbox, retrying a dead message, and the
difference between a template version and the shipped default.

Every sale state change still goes through ``services.sales.transition``; this module writes
only one thing, a dead outbox row put back in the queue (``retry_message``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update

from mailflow.mail.outbox import DEAD, QUEUED
from mailflow.schemas import MAX_ID
from mailflow.services import sales as sales_service
from mailflow.services import templates
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict, NotFound
from mailflow.store.models import Buyer, InboxMessage, Order, OutboxMessage, Sale, Seller

PAGE_SIZE = 50
_outbox = OutboxMessage.__table__


@dataclass(frozen=True)
class Page:
    """One page of a listing; ``has_next`` is known by reading one row more than shown."""

    rows: list[dict[str, Any]]
    page: int
    has_next: bool


def _page(rows: list[Any], page: int, size: int) -> Page:
    return Page([dict(r._mapping) for r in rows[:size]], page, len(rows) > size)


def _offset(page: int, size: int) -> int:
    return (max(page, 1) - 1) * size


# --- sales ---------------------------------------------------------------------------------


def search_sales(
    ctx: ServiceContext,
    query: str = "",
    *,
    status: str | None = None,
    seller_id: int | None = None,
    page: int = 1,
    size: int = PAGE_SIZE,
) -> Page:
    """Sales, newest first, matching ``query``: a sale id (``123`` or ``#123``), an order's
    external id (exact or its beginning), words of the title, or the seller's name or email."""
    statement = (
        select(
            Sale.id,
            Sale.title,
            Sale.status,
            Sale.amount_cents,
            Sale.currency,
            Sale.created_at,
            Sale.seller_id,
            Seller.name.label("seller_name"),
            Order.external_id.label("order_external_id"),
        )
        .join(Seller, Seller.id == Sale.seller_id)
        .join(Order, Order.id == Sale.order_id)
    )
    query = query.strip()
    if query:
        matches = [
            Order.external_id.istartswith(query, autoescape=True),
            Sale.title.icontains(query, autoescape=True),
            Seller.name.icontains(query, autoescape=True),
            Seller.email.icontains(query, autoescape=True),
        ]
        number = query.removeprefix("#")
        if number.isascii() and number.isdigit() and int(number) <= MAX_ID:
            matches.insert(0, Sale.id == int(number))
        statement = statement.where(or_(*matches))
    if status:
        statement = statement.where(Sale.status == status)
    if seller_id is not None:
        statement = statement.where(Sale.seller_id == seller_id)
    statement = statement.order_by(Sale.id.desc()).offset(_offset(page, size)).limit(size + 1)
    with ctx.db.read() as session:
        rows = session.execute(statement).all()
    return _page(rows, page, size)


def sale_detail(ctx: ServiceContext, sale_id: int) -> dict[str, Any]:
    """The sale as the API shows it (payment, events), with its order, seller, buyer and the
    emails queued about it."""
    view = sales_service.get_sale(ctx, sale_id)
    with ctx.db.read() as session:
        order = session.get(Order, view["order_id"])
        seller = session.get(Seller, view["seller_id"])
        buyer = session.get(Buyer, order.buyer_id) if order else None
        mail = session.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.template,
                OutboxMessage.recipient,
                OutboxMessage.status,
                OutboxMessage.created_at,
            )
            .where(OutboxMessage.sale_id == sale_id)
            .order_by(OutboxMessage.id)
        ).all()
    assert order is not None and seller is not None and buyer is not None
    return {
        **view,
        "order": {"id": order.id, "external_id": order.external_id},
        "seller": {"id": seller.id, "name": seller.name, "email": seller.email},
        "buyer": {"name": buyer.name, "email": buyer.email},
        "mail": [dict(m._mapping) for m in mail],
    }


# --- outbox --------------------------------------------------------------------------------


def outbox_counts(ctx: ServiceContext) -> dict[str, int]:
    with ctx.db.read() as session:
        rows = session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    return {status: count for status, count in rows}


def list_outbox(
    ctx: ServiceContext, status: str | None = None, *, page: int = 1, size: int = PAGE_SIZE
) -> Page:
    """Outbox rows, newest first, without their bodies."""
    statement = select(
        OutboxMessage.id,
        OutboxMessage.template,
        OutboxMessage.recipient,
        OutboxMessage.subject,
        OutboxMessage.status,
        OutboxMessage.attempts,
        OutboxMessage.last_error,
        OutboxMessage.next_attempt_at,
        OutboxMessage.created_at,
        OutboxMessage.sent_at,
        OutboxMessage.sale_id,
    )
    if status:
        statement = statement.where(OutboxMessage.status == status)
    statement = statement.order_by(OutboxMessage.id.desc()).offset(_offset(page, size))
    with ctx.db.read() as session:
        rows = session.execute(statement.limit(size + 1)).all()
    return _page(rows, page, size)


def outbox_message(ctx: ServiceContext, message_id: int) -> OutboxMessage:
    with ctx.db.read() as session:
        row = session.get(OutboxMessage, message_id)
    if row is None:
        raise NotFound(f"no outbox message {message_id}")
    return row


def retry_message(ctx: ServiceContext, message_id: int) -> None:
    """Put a dead message back in the queue, due now, with the same Message-ID and body.

    The worker gives up on a message ``smtp.give_up_after_hours`` after its ``created_at``
    and doubles its retry delay with each attempt, so both are reset: ``created_at`` becomes
    the time of the retry and ``attempts`` 0, giving the retried message a full new retry
    schedule (there is no separate column for a retry time). ``last_error`` stays until the
    message is delivered, to show why it died. A compare-and-set on ``status = 'dead'`` makes
    two retries of one message queue it once.
    """
    now = ctx.clock()
    with ctx.db.transaction() as session:
        retried = session.execute(
            update(_outbox)
            .where(_outbox.c.id == message_id, _outbox.c.status == DEAD)
            .values(
                status=QUEUED,
                next_attempt_at=now,
                created_at=now,
                attempts=0,
                lease_until=None,
            )
        ).rowcount
        if not retried:
            status = session.execute(
                select(_outbox.c.status).where(_outbox.c.id == message_id)
            ).scalar()
            if status is None:
                raise NotFound(f"no outbox message {message_id}")
            raise Conflict(
                f"message {message_id} is {status}, not dead: only dead messages are retried",
                code="not_dead",
                status=status,
            )
        session.info["mail_queued"] = True  # wakes the delivery worker after the commit


# --- inbox ---------------------------------------------------------------------------------


def inbox_has_messages(ctx: ServiceContext) -> bool:
    with ctx.db.read() as session:
        return session.execute(select(InboxMessage.id).limit(1)).first() is not None


def list_inbox(ctx: ServiceContext, *, page: int = 1, size: int = PAGE_SIZE) -> Page:
    """What the embedded inbox received, newest first, without the raw messages."""
    statement = (
        select(
            InboxMessage.id,
            InboxMessage.received_at,
            InboxMessage.mail_from,
            InboxMessage.rcpt_to,
            InboxMessage.subject,
        )
        .order_by(InboxMessage.id.desc())
        .offset(_offset(page, size))
        .limit(size + 1)
    )
    with ctx.db.read() as session:
        rows = session.execute(statement).all()
    return _page(rows, page, size)


def inbox_message(ctx: ServiceContext, message_id: int) -> InboxMessage:
    with ctx.db.read() as session:
        row = session.get(InboxMessage, message_id)
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
