"""What the seller pages read: the seller's own sales, a cancellation's preview, the rate's
history. Every state change still goes through ``services.sales.transition``.

Each function takes the logged-in seller's id and answers ``NotFound`` for a sale of another
seller, exactly as for a sale that does not exist, so the pages cannot tell one from the other.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select

from mailflow.domain import money
from mailflow.domain.policy import Counts
from mailflow.domain.sales import (
    Action,
    AlreadyDone,
    IllegalTransition,
    Reason,
    SaleStatus,
    plan,
)
from mailflow.mail.formatting import DEFAULT_LOCALE
from mailflow.services import accounts, notify, sales
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict, NotFound
from mailflow.store.models import Buyer, LoginLink, Order, Payment, Sale, SaleEvent, Seller

PAGE_SIZE = 20
HISTORY_DAYS = 60
MAX_ID = 2**31 - 1
BUYER_CANCEL_KEY = "buyer_sale_cancelled"
_REFUSED = (SaleStatus.REFUSED.value, SaleStatus.EXPIRED.value)


@dataclass(frozen=True)
class SellerInfo:
    id: int
    name: str
    email: str
    locale: str
    tier: str
    suspended_until: datetime | None


@dataclass(frozen=True)
class SalePage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int


def seller_info(ctx: ServiceContext, seller_id: int) -> SellerInfo | None:
    with ctx.db.read() as session:
        seller = session.get(Seller, seller_id)
    if seller is None or seller.id is None:
        return None
    return SellerInfo(
        seller.id, seller.name, seller.email, seller.locale, seller.tier, seller.suspended_until
    )


def login_link_seller(ctx: ServiceContext, token: str) -> int:
    """The seller a login link is for, if it can still be used; it is not spent (a GET).

    Raises ``accounts.LoginFailed`` ("invalid", "expired" or "used") as ``use_login_link``
    would, so that the page a link opens already says when it cannot work any more.
    """
    seller_id = accounts.check_login_link(ctx, token)
    _seller, nonce = ctx.signer.verify_login_token(token, accounts.LOGIN_LINK_MINUTES * 60)
    with ctx.db.read() as session:
        link = session.get(LoginLink, nonce)
    if link is None or link.seller_id != seller_id:
        raise accounts.LoginFailed("invalid")
    if link.used_at is not None:
        raise accounts.LoginFailed("used")
    if _utc(link.expires_at) <= _utc(ctx.clock()):
        raise accounts.LoginFailed("expired")
    return seller_id


def _deadline(ctx: ServiceContext, created_at: datetime) -> datetime:
    return created_at + timedelta(hours=ctx.policy.acceptance_deadline_hours)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


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
    conditions: list[Any] = [Sale.seller_id == seller_id]
    if status:
        conditions.append(Sale.status == status)
    search = search.strip()
    if search:
        pattern = _like(search)
        matches: list[Any] = [
            Sale.title.ilike(pattern, escape="\\"),  # type: ignore[attr-defined]
            Sale.sku.ilike(pattern, escape="\\"),  # type: ignore[attr-defined]
            Order.external_id.ilike(pattern, escape="\\"),  # type: ignore[attr-defined]
        ]
        number = search.removeprefix("#")
        if number.isdigit() and int(number) <= MAX_ID:
            matches.append(Sale.id == int(number))
        conditions.append(or_(*matches))
    base = select(Sale, Order.external_id).join(Order, Order.id == Sale.order_id)
    with ctx.db.read() as session:
        total = session.execute(
            select(func.count())
            .select_from(Sale)
            .join(Order, Order.id == Sale.order_id)
            .where(*conditions)
        ).scalar_one()
        pages = max(1, -(-total // per_page))
        page = min(max(1, page), pages)
        rows = session.execute(
            base.where(*conditions)
            .order_by(Sale.created_at.desc(), Sale.id.desc())  # type: ignore[union-attr]
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
    return SalePage(
        rows=[
            {
                "id": sale.id,
                "title": sale.title,
                "sku": sale.sku,
                "quantity": sale.quantity,
                "amount_cents": sale.amount_cents,
                "currency": sale.currency,
                "status": sale.status,
                "created_at": sale.created_at,
                "deadline": _deadline(ctx, sale.created_at),
                "external_id": external_id,
            }
            for sale, external_id in rows
        ],
        total=total,
        page=page,
        pages=pages,
    )


def _own_sale(session: Any, seller_id: int, sale_id: int) -> Sale:
    sale = session.get(Sale, sale_id) if 0 < sale_id <= MAX_ID else None
    if sale is None or sale.seller_id != seller_id:
        raise NotFound(f"no sale {sale_id}")
    return sale  # type: ignore[no-any-return]


def seller_sale(ctx: ServiceContext, seller_id: int, sale_id: int) -> dict[str, Any]:
    """One of the seller's sales: as the API shows it, plus what the sale page needs."""
    with ctx.db.read() as session:
        sale = _own_sale(session, seller_id, sale_id)
        order = session.get(Order, sale.order_id)
        buyer = session.get(Buyer, order.buyer_id) if order else None
        view = sales.sale_view(session, sale)
        payment = session.get(Payment, sale.id)
    return {
        **view,
        "message": sale.message,
        "amount_cents": sale.amount_cents,
        "deadline": _deadline(ctx, sale.created_at),
        "external_id": order.external_id if order else "",
        "buyer_name": buyer.name if buyer else "",
        "payment_state": payment.state if payment else None,
        "refunded_cents": payment.refunded_cents if payment else 0,
        "commission_cents": payment.commission_cents if payment else 0,
    }


def check_sale(ctx: ServiceContext, seller_id: int, sale_id: int) -> None:
    """Raise ``NotFound`` unless the sale exists and is the seller's."""
    with ctx.db.read() as session:
        _own_sale(session, seller_id, sale_id)


def cancel_preview(
    ctx: ServiceContext, seller_id: int, sale_id: int, reason: Reason, message: str
) -> dict[str, Any]:
    """The email the buyer would get if the seller cancelled now with ``reason`` and
    ``message``: rendered by the renderer that sends, in the buyer's language, with the
    sale and the payment as the cancellation would leave them. Nothing is stored.

    Raises ``Conflict`` (with a hint code) when the sale cannot be
    cancelled from its state, and ``NotFound`` for a sale that is not the seller's.
    """
    with ctx.db.read() as session:
        sale = _own_sale(session, seller_id, sale_id)
        try:
            plan(Action.CANCEL, SaleStatus(sale.status))
        except (AlreadyDone, IllegalTransition) as exc:
            status = SaleStatus(sale.status)
            raise Conflict(
                f"cannot cancel a sale that is {status.value}",
                code="illegal_transition",
                hint=f"{Action.CANCEL.value}.{status.value}",
                status=status.value,
            ) from exc
        context = notify.preview_context(ctx, session, BUYER_CANCEL_KEY, sale)
        order = session.get(Order, sale.order_id)
        buyer = session.get(Buyer, order.buyer_id) if order else None
        payment = session.get(Payment, sale.id)
    assert payment is not None
    locale = buyer.locale if buyer else DEFAULT_LOCALE
    before = money.Money(
        state=money.PaymentState(payment.state),
        amount=money.from_cents(payment.amount_cents),
        refunded=money.from_cents(payment.refunded_cents),
        commission=money.from_cents(payment.commission_cents),
        payout=money.from_cents(payment.payout_cents),
    )
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
        "buyer_name": buyer.name if buyer else "",
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
    with ctx.db.read() as session:
        created = session.execute(
            select(Sale.id, Sale.created_at)
            .where(Sale.seller_id == seller_id, Sale.created_at >= earliest)
            .order_by(Sale.created_at, Sale.id)
        ).all()
        events = session.execute(
            select(SaleEvent.sale_id, SaleEvent.at, SaleEvent.to_status)
            .join(Sale, Sale.id == SaleEvent.sale_id)
            .where(Sale.seller_id == seller_id, Sale.created_at >= earliest)
            .order_by(SaleEvent.sale_id, SaleEvent.at, SaleEvent.id)
        ).all()
    history: dict[int, tuple[list[datetime], list[str]]] = {}
    for sale_id, at, to_status in events:
        times, statuses = history.setdefault(sale_id, ([], []))
        times.append(_utc(at))
        statuses.append(to_status)
    ids = [row[0] for row in created]
    starts = [_utc(row[1]) for row in created]
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
