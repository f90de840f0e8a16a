"""The seller's sales: "Toutes les commandes" (filter, search, pages) and a sale's page, with
accept, refuse, and cancel with a previewed message to the buyer.

Every state change goes through ``services.sales.transition`` with the portal channel, then
redirects with a flash message. A sale of another seller is a 404, the same page as a sale
that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from mailflow import i18n
from mailflow.schemas import Message
from mailflow.services import conversation, portal, sales
from mailflow.services.actions import (
    MAX_MESSAGE_LENGTH,
    Action,
    Actor,
    Channel,
    Reason,
    SaleStatus,
    possible,
)
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict, InvalidInput, NotFound
from mailflow.services.portal import SellerInfo
from mailflow.web.deps import CsrfForm, SellerDep, ServicesDep
from mailflow.web.seller_core import (
    SellerRoute,
    not_found,
    redirect,
    render,
    sale_number,
    t,
)
from mailflow.web.session import flash

router = APIRouter(route_class=SellerRoute)

REASONS = [r.value for r in Reason]
STATUSES = [s.value for s in SaleStatus]
PORTAL_ACTIONS = (Action.ACCEPT, Action.REFUSE, Action.CANCEL)
_message = TypeAdapter(Message)


def _page_number(raw: str) -> int:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else 1


@router.get("/sales", response_class=HTMLResponse)
def sales_list(
    request: Request,
    seller: SellerDep,
    services: ServicesDep,
    status: str = "",
    q: str = "",
    page: str = "1",
) -> Response:
    status = status if status in STATUSES else ""
    q = q.strip()[:200]
    result = portal.list_sales(
        services,
        seller.id,
        status=status or None,
        search=q,
        page=_page_number(page),
    )

    def page_url(number: int) -> str:
        query = {k: v for k, v in (("status", status), ("q", q)) if v}
        if number > 1:
            query["page"] = str(number)
        return "/seller/sales" + (f"?{urlencode(query)}" if query else "")

    return render(
        request,
        "sales.html.j2",
        seller,
        nav="sales",
        result=result,
        status=status,
        q=q,
        statuses=STATUSES,
        prev_url=page_url(result.page - 1) if result.page > 1 else None,
        next_url=page_url(result.page + 1) if result.page < result.pages else None,
    )


def _sale_response(
    request: Request,
    seller: SellerInfo,
    sale: dict[str, Any],
    status_code: int = 200,
    *,
    error: str | None = None,
    reason: str = Reason.OUT_OF_STOCK.value,
    message: str = "",
    open_form: str | None = None,
    messages: list[conversation.MessageView] | None = None,
) -> HTMLResponse:
    allowed = possible(sale["status"])
    return render(
        request,
        "sale.html.j2",
        seller,
        status_code,
        nav="sales",
        sale=sale,
        actions=[a.value for a in PORTAL_ACTIONS if a in allowed],
        reasons=REASONS,
        error=error,
        reason=reason,
        message=message,
        open_form=open_form,
        max_message=MAX_MESSAGE_LENGTH,
        messages=messages,
        max_body=conversation.MAX_BODY,
    )


@router.get("/sales/{sale_id}", response_class=HTMLResponse)
def sale_page(request: Request, sale_id: str, seller: SellerDep, services: ServicesDep) -> Response:
    number = sale_number(sale_id)
    if number is None:
        return not_found(request, seller)
    try:
        sale = portal.seller_sale(services, seller.id, number)
        messages = conversation.messages(services, number, seller.id)
    except NotFound:
        return not_found(request, seller)
    return _sale_response(request, seller, sale, messages=messages)


@router.post("/sales/{sale_id}/messages", response_class=HTMLResponse)
async def write_message(sale_id: str, post: SalePost) -> Response:
    """The seller writes in the sale's conversation: relayed to the buyer by email."""
    request, seller, services = post.request, post.seller, post.services
    number = sale_number(sale_id)
    if number is None:
        return not_found(request, seller)
    body = post.form.get("body")
    try:
        await run_in_threadpool(
            conversation.write,
            services,
            number,
            conversation.Author.SELLER,
            body if isinstance(body, str) else "",
            seller.id,
        )
    except NotFound:
        return not_found(request, seller)
    except InvalidInput:
        flash(request, t(seller, "seller.conversation.invalid", max=conversation.MAX_BODY), "error")
        return redirect(f"/seller/sales/{number}#conversation")
    flash(request, t(seller, "seller.conversation.sent"))
    return redirect(f"/seller/sales/{number}#conversation")


class _Invalid(Exception):
    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


def _reason(form: dict[str, Any]) -> Reason:
    raw = form.get("reason")
    if not isinstance(raw, str) or raw not in REASONS:
        raise _Invalid("seller.form.bad_reason")
    return Reason(raw)


def _buyer_message(form: dict[str, Any]) -> str:
    raw = form.get("message", "")
    if not isinstance(raw, str):
        raise _Invalid("seller.form.bad_message")
    # Browsers send line breaks as CRLF, which ``maxlength`` counts as one character.
    text = raw.replace("\r\n", "\n")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise _Invalid("seller.form.too_long", max=MAX_MESSAGE_LENGTH, length=len(text))
    try:
        return _message.validate_python(text)
    except ValidationError:
        raise _Invalid("seller.form.bad_message") from None


@dataclass(frozen=True)
class _SalePost:
    """A POST on one of the seller's sales: its checked form, the seller and the services."""

    request: Request
    form: dict[str, Any]
    seller: SellerInfo
    services: ServiceContext


async def _sale_post(
    request: Request, form: CsrfForm, seller: SellerDep, services: ServicesDep
) -> _SalePost:
    return _SalePost(request, form, seller, services)


SalePost = Annotated[_SalePost, Depends(_sale_post)]


@dataclass
class _Posted:
    seller: SellerInfo
    sale_id: int
    reason: Reason | None
    message: str | None


async def _posted(post: _SalePost, raw_id: str, action: Action) -> _Posted | Response:
    """The checked form of a POST on a sale, or the page that answers it instead."""
    request, form, seller, services = post.request, post.form, post.seller, post.services
    number = sale_number(raw_id)
    if number is None:
        return not_found(request, seller)
    try:
        await run_in_threadpool(portal.check_sale, services, seller.id, number)
    except NotFound:
        return not_found(request, seller)
    raw_reason = form.get("reason")
    raw_message = form.get("message")
    try:
        reason = _reason(form) if action in (Action.REFUSE, Action.CANCEL) else None
        message = _buyer_message(form) if action is Action.CANCEL else None
    except _Invalid as invalid:
        sale = await run_in_threadpool(portal.seller_sale, services, seller.id, number)
        messages = await run_in_threadpool(conversation.messages, services, number, seller.id)
        return _sale_response(
            request,
            seller,
            sale,
            422,
            messages=messages,
            error=t(seller, invalid.key, **invalid.values),
            reason=raw_reason if isinstance(raw_reason, str) else Reason.OUT_OF_STOCK.value,
            message=raw_message if isinstance(raw_message, str) else "",
            open_form=action.value,
        )
    return _Posted(seller, number, reason, message)


async def _conflict(
    request: Request, services: ServiceContext, posted: _Posted, action: Action
) -> HTMLResponse:
    sale = await run_in_threadpool(portal.seller_sale, services, posted.seller.id, posted.sale_id)
    hint = i18n.hint_for(action, SaleStatus(sale["status"]), posted.seller.locale)
    status = i18n.status_label(sale["status"], posted.seller.locale)
    error = f"{t(posted.seller, 'conflict', status=status)} {hint}"
    messages = await run_in_threadpool(
        conversation.messages, services, posted.sale_id, posted.seller.id
    )
    return _sale_response(request, posted.seller, sale, 409, error=error, messages=messages)


async def _act(post: _SalePost, raw_id: str, action: Action) -> Response:
    request, seller, services = post.request, post.seller, post.services
    posted = await _posted(post, raw_id, action)
    if not isinstance(posted, _Posted):
        return posted
    try:
        outcome = await run_in_threadpool(
            lambda: sales.transition(
                services,
                posted.sale_id,
                action,
                actor=Actor.SELLER,
                channel=Channel.PORTAL,
                reason=posted.reason,
                message=posted.message,
            )
        )
    except NotFound:
        return not_found(request, seller)
    except Conflict:
        return await _conflict(request, services, posted, action)
    if outcome.changed:
        flash(request, t(seller, f"seller.done.{action.value}"))
    else:
        status = i18n.status_label(outcome.sale["status"], seller.locale)
        flash(request, t(seller, "seller.already", status=status))
    return redirect(f"/seller/sales/{posted.sale_id}")


@router.post("/sales/{sale_id}/accept", response_class=HTMLResponse)
async def accept(sale_id: str, post: SalePost) -> Response:
    return await _act(post, sale_id, Action.ACCEPT)


@router.post("/sales/{sale_id}/refuse", response_class=HTMLResponse)
async def refuse(sale_id: str, post: SalePost) -> Response:
    return await _act(post, sale_id, Action.REFUSE)


@router.post("/sales/{sale_id}/cancel", response_class=HTMLResponse)
async def cancel(sale_id: str, post: SalePost) -> Response:
    return await _act(post, sale_id, Action.CANCEL)


@router.post("/sales/{sale_id}/cancel/preview", response_class=HTMLResponse)
async def cancel_preview(sale_id: str, post: SalePost) -> Response:
    """What the buyer will read if the seller confirms: nothing is changed or sent."""
    request, seller, services = post.request, post.seller, post.services
    posted = await _posted(post, sale_id, Action.CANCEL)
    if not isinstance(posted, _Posted):
        return posted
    assert posted.reason is not None and posted.message is not None
    try:
        preview = await run_in_threadpool(
            portal.cancel_preview,
            services,
            seller.id,
            posted.sale_id,
            posted.reason,
            posted.message,
        )
    except NotFound:
        return not_found(request, seller)
    except Conflict:
        return await _conflict(request, services, posted, Action.CANCEL)
    sale = await run_in_threadpool(portal.seller_sale, services, seller.id, posted.sale_id)
    return render(
        request,
        "preview.html.j2",
        seller,
        nav="sales",
        sale=sale,
        preview=preview,
        reason=posted.reason.value,
        message=posted.message,
        reasons=REASONS,
        max_message=MAX_MESSAGE_LENGTH,
    )
