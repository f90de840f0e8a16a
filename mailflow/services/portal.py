"""What the seller pages read: the seller's own sales, a cancellation's preview, the rate's
history. Every state change still goes through ``services.sales.transition``.

Each function takes the logged-in seller's id and answers ``NotFound`` for a sale of another
seller, exactly as for a sale that does not exist, so the pages cannot tell one from the other.
"""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from mailflow.domain import money
from mailflow.domain.policy import Counts
from mailflow.domain.sales import (
    Action,
    AlreadyDone,
    IllegalTransition,
    Reason,
    SaleStatus,
    deadline_of,
    plan,
)
from mailflow.services import accounts, notify, sales
from mailflow.services.context import ServiceContext
from mailflow.services.errors import NotFound
from mailflow.store.database import Transaction
from mailflow.store.history import SellerSale, SellerSaleFilter
from mailflow.store.messages import Slice
from mailflow.store.records import SaleFacts
from mailflow.store.sellers import SellerProfile

PAGE_SIZE = 20
HISTORY_DAYS = 60
MAX_ID = 2**31 - 1
BUYER_CANCEL_KEY = "buyer_sale_cancelled"
_REFUSED = (SaleStatus.REFUSED.value, SaleStatus.EXPIRED.value)


# The signed-in seller as the pages show them (name, locale, tier, suspension).
SellerInfo = SellerProfile


@dataclass(frozen=True)
class SaleLine(SellerSale):
    """A line of the seller's sales list: the sale, and until when it can be accepted."""

    deadline: datetime


@dataclass(frozen=True)
class SalePage:
    rows: list[SaleLine]
    total: int
    page: int
    pages: int


def seller_info(ctx: ServiceContext, seller_id: int) -> SellerInfo | None:
    return ctx.sellers.get(seller_id)


def login_link_seller(ctx: ServiceContext, token: str) -> int:
    """The seller a login link is for, if it can still be used; it is not spent (a GET).

    Raises ``accounts.LoginFailed`` ("invalid", "expired" or "used") as ``use_login_link``
    would, so that the page a link opens already says when it cannot work any more.
    """
    seller_id = accounts.check_login_link(ctx, token)
    _seller, nonce = ctx.signer.verify_login_token(token, accounts.LOGIN_LINK_MINUTES * 60)
    with ctx.db.read() as session:
        link = ctx.logins.link(session, nonce)
    if link is None or link.seller_id != seller_id:
        raise accounts.LoginFailed("invalid")
    if link.used_at is not None:
        raise accounts.LoginFailed("used")
    if _utc(link.expires_at) <= _utc(ctx.clock()):
        raise accounts.LoginFailed("expired")
    return seller_id


def _deadline(ctx: ServiceContext, created_at: datetime) -> datetime:
    return deadline_of(created_at, ctx.policy.acceptance_deadline_hours)


def list_sales(
    ctx: ServiceContext,
    seller_id: int,
    *,
    status: str | None = None,
    search: str = "",
    page: int = 1,
    per_page: int = PAGE_SIZE,
) -> SalePage:
    """The seller's sales, newest first, filtered by status and a search on the title, the
    SKU, the order's external id (and the sale's number), one page of them."""
    search = search.strip()
    number = search.removeprefix("#")
    where = SellerSaleFilter(
        seller_id,
        status or None,
        search,
        int(number) if number.isdigit() and int(number) <= MAX_ID else None,
    )
    total = ctx.history.count_seller_sales(where)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = ctx.history.seller_sales(where, Slice((page - 1) * per_page, per_page))
    return SalePage(
        rows=[SaleLine(**asdict(row), deadline=_deadline(ctx, row.created_at)) for row in rows],
        total=total,
        page=page,
        pages=pages,
    )


def _own_sale(tx: Transaction, seller_id: int, sale_id: int) -> SaleFacts:
    about = sales.facts_of(tx, sale_id)
    if about.sale.seller_id != seller_id:
        raise NotFound(f"no sale {sale_id}")
    return about


def seller_sale(ctx: ServiceContext, seller_id: int, sale_id: int) -> dict[str, Any]:
    """One of the seller's sales: as the API shows it, plus what the sale page needs."""
    with ctx.db.read() as tx:
        about = _own_sale(tx, seller_id, sale_id)
        view = sales.sale_view(tx, about.sale, about.payment)
    sale, payment = about.sale, about.payment
    return {
        **view,
        "message": sale.message,
        "amount_cents": sale.amount_cents,
        "deadline": _deadline(ctx, sale.created_at),
        "external_id": about.order.external_id,
        "buyer_name": about.buyer.name,
        "payment_state": payment.state if payment else None,
        "refunded_cents": payment.refunded_cents if payment else 0,
        "commission_cents": payment.commission_cents if payment else 0,
    }


def check_sale(ctx: ServiceContext, seller_id: int, sale_id: int) -> None:
    """Raise ``NotFound`` unless the sale exists and is the seller's."""
    owner = ctx.history.seller_of(sale_id) if 0 < sale_id <= MAX_ID else None
    if owner is None or owner != seller_id:
        raise NotFound(f"no sale {sale_id}")


def cancel_preview(
    ctx: ServiceContext, seller_id: int, sale_id: int, reason: Reason, message: str
) -> dict[str, Any]:
    """The email the buyer would get if the seller cancelled now with ``reason`` and
    ``message``: rendered by the renderer that sends, in the buyer's language, with the
    sale and the payment as the cancellation would leave them. Nothing is stored.

    Raises ``Conflict`` (with a hint code) when the sale cannot be
    cancelled from its state, and ``NotFound`` for a sale that is not the seller's.
    """
    with ctx.db.read() as tx:
        about = _own_sale(tx, seller_id, sale_id)
        try:
            plan(Action.CANCEL, SaleStatus(about.sale.status))
        except (AlreadyDone, IllegalTransition) as exc:
            # A cancelled sale cannot be cancelled again from the portal either.
            raise sales.conflict_of(exc) from exc
        # The context as the sending code builds it.
        context = notify.preview_context(ctx, tx, about)
    payment = about.payment
    assert payment is not None
    locale = about.buyer.locale
    before = sales.money_of(payment)
    after = money.settle(Action.CANCEL, before, Decimal(str(ctx.policy.commission_rate)))
    context["sale"] = {
        **context["sale"],
        "status": SaleStatus.CANCELLED.value,
        "reason": reason.value,
        "message": message,
    }
    context["payment"] = {
        **context["payment"],
        "state": after.state.value,
        "refunded_cents": money.to_cents(after.refunded),
        "commission_cents": money.to_cents(after.commission),
    }
    context["event"] = {"actor": "seller", "channel": "portal", "at": ctx.clock()}
    rendered = ctx.renderer.render(BUYER_CANCEL_KEY, locale, context)
    return {
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "locale": locale,
        "buyer_name": about.buyer.name,
    }


def _utc(moment: datetime) -> datetime:
    """Aware UTC (the database columns give aware UTC times; naive ones are UTC too)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def rate_history(
    ctx: ServiceContext, seller_id: int, days: int = HISTORY_DAYS
) -> list[dict[str, Any]]:
    """The seller's rate as the policy computed it on each of the last ``days`` days.

    One point a day, the last one now: the rate over the rolling window ending at that
    moment, each sale counted in the state it was in then (from its event history), so a
    cancellation made today does not move the past.
    """
    now = _utc(ctx.clock())
    window = timedelta(days=ctx.policy.window_days)
    points_at = [now - timedelta(days=k) for k in range(days - 1, -1, -1)]
    earliest = points_at[0] - window
    found = ctx.history.status_history(seller_id, earliest)
    history: dict[int, tuple[list[datetime], list[str]]] = {}
    for change in found.changes:
        times, statuses = history.setdefault(change.sale_id, ([], []))
        times.append(_utc(change.at))
        statuses.append(change.to_status)
    ids = [start.id for start in found.starts]
    starts = [_utc(start.created_at) for start in found.starts]
    count_refusals = ctx.policy.count_refusals
    points = []
    for at in points_at:
        lo = bisect.bisect_left(starts, at - window)
        hi = bisect.bisect_right(starts, at)
        cancelled = refused = withdrawn = 0
        for sale_id in ids[lo:hi]:
            times, statuses = history.get(sale_id, ([], []))
            i = bisect.bisect_right(times, at)
            status = statuses[i - 1] if i else SaleStatus.PENDING.value
            if status == SaleStatus.CANCELLED.value:
                cancelled += 1
            elif status in _REFUSED:
                refused += 1
            elif status == SaleStatus.WITHDRAWN.value:
                withdrawn += 1
        counts = Counts(hi - lo, cancelled, refused, withdrawn)
        points.append(
            {
                "at": at,
                "rate": counts.rate(count_refusals),
                "counted": counts.counted,
                "against": counts.against(count_refusals),
            }
        )
    return points
