"""Console pages for sellers and sales: sellers with their rate and tier, a seller's sales that
count, sales search, a sale's payment and history, and "record a withdrawal" (support and
admins), which goes through ``services.sales.transition`` as every state change does."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from mailflow.schemas import WithdrawIn
from mailflow.services import console, conversation, policy, sales, sellers, suppressions
from mailflow.services.actions import Action, Actor, Channel, SaleStatus, possible
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict, InvalidInput
from mailflow.web.admin_core import (
    AdminRoute,
    field,
    hint_words,
    page_number,
    redirect,
    render,
    t,
)
from mailflow.web.deps import ConsoleUserDep, IdPath, ServicesDep
from mailflow.web.session import flash, form_with_csrf

router = APIRouter(route_class=AdminRoute)

SELLERS_PER_PAGE = 50


def _query(**values: Any) -> dict[str, Any]:
    """The filters of a listing for its page links, without the empty ones."""
    return {name: value for name, value in values.items() if value not in ("", None)}


@router.get("/sellers", response_class=HTMLResponse)
def sellers_page(
    request: Request,
    user: ConsoleUserDep,
    ctx: ServicesDep,
    q: str = "",
    over: bool = False,
    page: int | None = None,
) -> HTMLResponse:
    rows = policy.stats_all(ctx, over_only=over)
    query = q.strip().casefold()
    if query:
        rows = [r for r in rows if query in r["name"].casefold() or query == str(r["id"])]
    number = page_number(page)
    start = (number - 1) * SELLERS_PER_PAGE
    return render(
        request,
        "admin/sellers.html.j2",
        t("admin.nav.sellers"),
        rows=rows[start : start + SELLERS_PER_PAGE],
        total=len(rows),
        page=number,
        has_next=len(rows) > start + SELLERS_PER_PAGE,
        q=q,
        over=over,
        query=_query(q=q, over="true" if over else ""),
        policy=ctx.policy,
    )


@router.get("/sellers/{seller_id}", response_class=HTMLResponse)
def seller_page(
    request: Request, seller_id: IdPath, user: ConsoleUserDep, ctx: ServicesDep
) -> HTMLResponse:
    seller = sellers.get_seller(ctx, seller_id)
    return render(
        request,
        "admin/seller.html.j2",
        seller["name"],
        seller=seller,
        stats=policy.stats(ctx, seller_id),
        unreachable=suppressions.suppression_of(ctx, seller["email"]),
    )


@router.get("/sales", response_class=HTMLResponse)
def sales_page(
    request: Request,
    user: ConsoleUserDep,
    ctx: ServicesDep,
    q: str = "",
    status: str = "",
    seller: int | None = None,
    page: int | None = None,
) -> HTMLResponse:
    statuses = [s.value for s in SaleStatus]
    status = status if status in statuses else ""
    found = console.search_sales(
        ctx,
        q[:200],
        status=status or None,
        seller_id=seller,
        page=page_number(page),
    )
    query = _query(q=q, status=status, seller=seller)
    return render(
        request,
        "admin/sales.html.j2",
        t("admin.nav.sales"),
        found=found,
        q=q,
        status=status,
        seller=seller,
        statuses=statuses,
        query=query,
    )


@router.get("/sales/{sale_id}", response_class=HTMLResponse)
def sale_page(
    request: Request, sale_id: IdPath, user: ConsoleUserDep, ctx: ServicesDep
) -> HTMLResponse:
    sale = console.sale_detail(ctx, sale_id)
    can_withdraw = Action.WITHDRAW in possible(sale["status"])
    return render(
        request,
        "admin/sale.html.j2",
        t("admin.sale.title", id=sale_id),
        sale=sale,
        can_withdraw=can_withdraw,
        messages=conversation.messages(ctx, sale_id),
        max_body=conversation.MAX_BODY,
    )


@router.post("/sales/{sale_id}/messages")
async def write_message(
    request: Request, sale_id: IdPath, user: ConsoleUserDep, ctx: ServicesDep
) -> Response:
    """Customer service writes in the sale's conversation: relayed to the buyer and the
    seller."""
    form = await form_with_csrf(request)
    body = form.get("body")
    back = f"/admin/sales/{sale_id}#conversation"
    try:
        await run_in_threadpool(
            conversation.write,
            ctx,
            sale_id,
            conversation.Author.SUPPORT,
            body if isinstance(body, str) else "",
        )
    except InvalidInput:
        flash(request, t("admin.conversation.invalid", max=conversation.MAX_BODY), "error")
        return redirect(back)
    flash(request, t("admin.conversation.sent"))
    return redirect(back)


@router.post("/sales/{sale_id}/withdraw")
async def withdraw(
    request: Request, sale_id: IdPath, user: ConsoleUserDep, ctx: ServicesDep
) -> Response:
    form = await form_with_csrf(request)
    return await run_in_threadpool(_withdraw, request, ctx, sale_id, form)


def _withdraw(
    request: Request, ctx: ServiceContext, sale_id: int, form: dict[str, Any]
) -> Response:
    back = f"/admin/sales/{sale_id}"
    try:
        note = WithdrawIn(note=field(form, "note")).note
    except ValidationError as exc:
        flash(request, t("admin.withdraw.bad_note", problem=exc.errors()[0]["msg"]), "error")
        return redirect(back)
    try:
        outcome = sales.transition(
            ctx,
            sale_id,
            Action.WITHDRAW,
            actor=Actor.SUPPORT,
            channel=Channel.PORTAL,
            note=note or None,
        )
    except Conflict as exc:
        hint = f" {hint_words(exc.hint)}" if exc.hint else ""
        flash(request, t("admin.withdraw.impossible", problem=exc.message) + hint, "error")
        return redirect(back)
    flash(request, t("admin.withdraw.done") if outcome.changed else t("admin.withdraw.already"))
    return redirect(back)
