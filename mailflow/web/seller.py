"""The seller's pages, ``/seller/…``: login by emailed link, "Toutes les commandes", a sale
(accept, refuse, cancel with a previewed message to the buyer) and the rate over time.

Pages are in the seller's language (the browser's before login). Every form carries the
session's CSRF token; every state change goes through ``services.sales.transition`` with the
portal channel, then redirects with a flash message. A sale of another seller is a 404, the
same page as a sale that does not exist.

Login links are scanner-safe like action links: the GET shows a button and spends nothing;
the POST spends the link (once) and opens the session. Asking for a link answers the same
whatever the address, and the link is made after the answer has gone (a background task),
so neither the page nor its timing tells whether a seller has that address.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from mailflow import i18n
from mailflow.bootstrap import System
from mailflow.domain.sales import (
    MAX_MESSAGE_LENGTH,
    Action,
    Actor,
    Channel,
    Reason,
    SaleStatus,
    allowed_actions,
)
from mailflow.schemas import Message
from mailflow.services import accounts, policy, portal, sales
from mailflow.services.errors import Conflict, NotFound
from mailflow.services.portal import SellerInfo
from mailflow.web.pages import Pages
from mailflow.web.session import (
    RateLimit,
    csrf_token,
    flash,
    form_with_csrf,
    pop_flashes,
)

router = APIRouter(prefix="/seller", include_in_schema=False)

SESSION_SELLER = "seller_id"
SESSION_NEXT = "seller_next"
SESSION_LOCALE = "locale"
LIMIT_WINDOW_SECONDS = 15 * 60
LIMIT_PER_ADDRESS = 5
LIMIT_PER_IP = 20
REASONS = [r.value for r in Reason]
STATUSES = [s.value for s in SaleStatus]
PORTAL_ACTIONS = (Action.ACCEPT, Action.REFUSE, Action.CANCEL)
_message = TypeAdapter(Message)
_limits_lock = threading.Lock()


# Plumbing -----------------------------------------------------------------------------------


def _system(request: Request) -> System:
    return request.app.state.system  # type: ignore[no-any-return]


def _pages(request: Request) -> Pages:
    return request.app.state.pages  # type: ignore[no-any-return]


@dataclass
class _Limits:
    by_ip: RateLimit
    by_address: RateLimit


def _limits(request: Request) -> _Limits:
    """The login-link rate limits of this app (per process, kept on the app's state)."""
    state = request.app.state
    with _limits_lock:
        limits = getattr(state, "seller_login_limits", None)
        if limits is None:
            limits = _Limits(
                RateLimit(LIMIT_PER_IP, LIMIT_WINDOW_SECONDS),
                RateLimit(LIMIT_PER_ADDRESS, LIMIT_WINDOW_SECONDS),
            )
            state.seller_login_limits = limits
    return limits  # type: ignore[no-any-return]


def _browser_locale(request: Request) -> str | None:
    header = request.headers.get("accept-language", "")
    return header.split(",")[0].split(";")[0].strip() or None


def _render(
    request: Request,
    name: str,
    seller: SellerInfo | None,
    status_code: int = 200,
    *,
    locale: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """A seller page: in ``locale``, else the seller's language, else the browser's."""
    locale = locale or (seller.locale if seller else _browser_locale(request))
    return _pages(request).render(
        f"seller/{name}",
        locale,
        status_code,
        seller=seller,
        csrf=csrf_token(request),
        flashes=pop_flashes(request),
        **context,
    )


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _current(request: Request) -> SellerInfo | None:
    seller_id = request.session.get(SESSION_SELLER)
    if not isinstance(seller_id, int):
        return None
    seller = portal.seller_info(_system(request).services, seller_id)
    if seller is None:
        request.session.pop(SESSION_SELLER, None)
    return seller


def _to_login(request: Request) -> RedirectResponse:
    """Back to the login page; a page asked for by GET is opened after logging in."""
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        request.session[SESSION_NEXT] = target
    return _redirect("/seller/login")


def _next_page(request: Request) -> str:
    target = request.session.pop(SESSION_NEXT, None)
    if isinstance(target, str) and target.startswith("/seller/") and "//" not in target:
        return target
    return "/seller/sales"


def _sale_id(raw: str) -> int | None:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    return value if 0 < value <= portal.MAX_ID else None


def _not_found(request: Request, seller: SellerInfo | None) -> HTMLResponse:
    return _render(request, "notfound.html.j2", seller, 404)


def _t(seller: SellerInfo | None, key: str, **values: object) -> str:
    return i18n.t(seller.locale if seller else None, key, **values)


# Login --------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def home() -> RedirectResponse:
    return _redirect("/seller/sales")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    if _current(request) is not None:
        return _redirect("/seller/sales")
    return _render(request, "login.html.j2", None, email="", error=None)


@router.post("/login", response_class=HTMLResponse)
async def login_request(request: Request) -> Response:
    form = await form_with_csrf(request)
    raw = form.get("email")
    email = raw.strip() if isinstance(raw, str) else ""
    limits = _limits(request)
    client = request.client.host if request.client else "unknown"
    if not limits.by_ip.allow(client):
        return _limited(request)
    address = accounts.normalized_email(email) if len(email) <= 320 else None
    if address is None:
        why = "seller.login.bad_email" if email else "seller.login.no_email"
        error = i18n.t(_browser_locale(request), why)
        return _render(request, "login.html.j2", None, 422, email=email, error=error)
    if not limits.by_address.allow(address.lower()):
        return _limited(request)
    response = _render(
        request,
        "login_sent.html.j2",
        None,
        email=address,
        minutes=accounts.LOGIN_LINK_MINUTES,
    )
    response.background = BackgroundTask(
        accounts.request_login_link, _system(request).services, address
    )
    return response


def _limited(request: Request) -> HTMLResponse:
    response = _render(request, "limited.html.j2", None, 429, minutes=LIMIT_WINDOW_SECONDS // 60)
    response.headers["Retry-After"] = str(LIMIT_WINDOW_SECONDS)
    return response


_LOGIN_FAILURES = {"invalid": 400, "expired": 410, "used": 410}


def _login_failed(request: Request, why: str) -> HTMLResponse:
    why = why if why in _LOGIN_FAILURES else "invalid"
    return _render(request, "login_failed.html.j2", None, _LOGIN_FAILURES[why], why=why)


@router.get("/login/{token}", response_class=HTMLResponse)
def login_confirm(request: Request, token: str) -> Response:
    """The page an emailed login link opens: a button; the link is not spent by a GET."""
    services = _system(request).services
    try:
        seller_id = portal.login_link_seller(services, token)
    except accounts.LoginFailed as failed:
        return _login_failed(request, str(failed))
    seller = portal.seller_info(services, seller_id)
    if seller is None:
        return _login_failed(request, "invalid")
    return _render(request, "login_confirm.html.j2", None, locale=seller.locale, who=seller)


@router.post("/login/{token}", response_class=HTMLResponse)
async def login_use(request: Request, token: str) -> Response:
    await form_with_csrf(request)
    services = _system(request).services
    try:
        seller_id = await run_in_threadpool(accounts.use_login_link, services, token)
    except accounts.LoginFailed as failed:
        return _login_failed(request, str(failed))
    seller = await run_in_threadpool(portal.seller_info, services, seller_id)
    if seller is None:
        return _login_failed(request, "invalid")
    request.session[SESSION_SELLER] = seller.id
    request.session[SESSION_LOCALE] = seller.locale
    flash(request, _t(seller, "seller.login.welcome", name=seller.name))
    return _redirect(_next_page(request))


@router.post("/logout", response_class=HTMLResponse)
async def logout(request: Request) -> Response:
    await form_with_csrf(request)
    seller = _current(request)
    for key in (SESSION_SELLER, SESSION_NEXT, SESSION_LOCALE):
        request.session.pop(key, None)
    flash(request, _t(seller, "seller.logout.done"))
    return _redirect("/seller/login")


# Sales --------------------------------------------------------------------------------------


async def _current_async(request: Request) -> SellerInfo | None:
    return await run_in_threadpool(_current, request)


def _page_number(raw: str) -> int:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else 1


@router.get("/sales", response_class=HTMLResponse)
def sales_list(request: Request, status: str = "", q: str = "", page: str = "1") -> Response:
    seller = _current(request)
    if seller is None:
        return _to_login(request)
    status = status if status in STATUSES else ""
    q = q.strip()[:200]
    result = portal.list_sales(
        _system(request).services,
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

    return _render(
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
) -> HTMLResponse:
    possible = allowed_actions(SaleStatus(sale["status"]))
    return _render(
        request,
        "sale.html.j2",
        seller,
        status_code,
        nav="sales",
        sale=sale,
        actions=[a.value for a in PORTAL_ACTIONS if a in possible],
        reasons=REASONS,
        error=error,
        reason=reason,
        message=message,
        open_form=open_form,
        max_message=MAX_MESSAGE_LENGTH,
    )


@router.get("/sales/{sale_id}", response_class=HTMLResponse)
def sale_page(request: Request, sale_id: str) -> Response:
    seller = _current(request)
    if seller is None:
        return _to_login(request)
    number = _sale_id(sale_id)
    if number is None:
        return _not_found(request, seller)
    try:
        sale = portal.seller_sale(_system(request).services, seller.id, number)
    except NotFound:
        return _not_found(request, seller)
    return _sale_response(request, seller, sale)


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


@dataclass
class _Posted:
    seller: SellerInfo
    sale_id: int
    reason: Reason | None
    message: str | None


async def _posted(request: Request, raw_id: str, action: Action) -> _Posted | Response:
    """The checked form of a POST on a sale, or the page that answers it instead."""
    form = await form_with_csrf(request)
    seller = await _current_async(request)
    if seller is None:
        return _to_login(request)
    number = _sale_id(raw_id)
    if number is None:
        return _not_found(request, seller)
    services = _system(request).services
    try:
        await run_in_threadpool(portal.check_sale, services, seller.id, number)
    except NotFound:
        return _not_found(request, seller)
    raw_reason = form.get("reason")
    raw_message = form.get("message")
    try:
        reason = _reason(form) if action in (Action.REFUSE, Action.CANCEL) else None
        message = _buyer_message(form) if action is Action.CANCEL else None
    except _Invalid as invalid:
        sale = await run_in_threadpool(portal.seller_sale, services, seller.id, number)
        return _sale_response(
            request,
            seller,
            sale,
            422,
            error=_t(seller, invalid.key, **invalid.values),
            reason=raw_reason if isinstance(raw_reason, str) else Reason.OUT_OF_STOCK.value,
            message=raw_message if isinstance(raw_message, str) else "",
            open_form=action.value,
        )
    return _Posted(seller, number, reason, message)


async def _conflict(request: Request, posted: _Posted, action: Action) -> HTMLResponse:
    services = _system(request).services
    sale = await run_in_threadpool(portal.seller_sale, services, posted.seller.id, posted.sale_id)
    hint = i18n.hint_for(action, SaleStatus(sale["status"]), posted.seller.locale)
    status = i18n.status_label(sale["status"], posted.seller.locale)
    error = f"{_t(posted.seller, 'conflict', status=status)} {hint}"
    return _sale_response(request, posted.seller, sale, 409, error=error)


async def _act(request: Request, raw_id: str, action: Action) -> Response:
    posted = await _posted(request, raw_id, action)
    if not isinstance(posted, _Posted):
        return posted
    services = _system(request).services
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
        return _not_found(request, posted.seller)
    except Conflict:
        return await _conflict(request, posted, action)
    seller = posted.seller
    if outcome.changed:
        flash(request, _t(seller, f"seller.done.{action.value}"))
    else:
        status = i18n.status_label(outcome.sale["status"], seller.locale)
        flash(request, _t(seller, "seller.already", status=status))
    return _redirect(f"/seller/sales/{posted.sale_id}")


@router.post("/sales/{sale_id}/accept", response_class=HTMLResponse)
async def accept(request: Request, sale_id: str) -> Response:
    return await _act(request, sale_id, Action.ACCEPT)


@router.post("/sales/{sale_id}/refuse", response_class=HTMLResponse)
async def refuse(request: Request, sale_id: str) -> Response:
    return await _act(request, sale_id, Action.REFUSE)


@router.post("/sales/{sale_id}/cancel", response_class=HTMLResponse)
async def cancel(request: Request, sale_id: str) -> Response:
    return await _act(request, sale_id, Action.CANCEL)


@router.post("/sales/{sale_id}/cancel/preview", response_class=HTMLResponse)
async def cancel_preview(request: Request, sale_id: str) -> Response:
    """What the buyer will read if the seller confirms: nothing is changed or sent."""
    posted = await _posted(request, sale_id, Action.CANCEL)
    if not isinstance(posted, _Posted):
        return posted
    assert posted.reason is not None and posted.message is not None
    services = _system(request).services
    try:
        preview = await run_in_threadpool(
            portal.cancel_preview,
            services,
            posted.seller.id,
            posted.sale_id,
            posted.reason,
            posted.message,
        )
    except NotFound:
        return _not_found(request, posted.seller)
    except Conflict:
        return await _conflict(request, posted, Action.CANCEL)
    sale = await run_in_threadpool(portal.seller_sale, services, posted.seller.id, posted.sale_id)
    return _render(
        request,
        "preview.html.j2",
        posted.seller,
        nav="sales",
        sale=sale,
        preview=preview,
        reason=posted.reason.value,
        message=posted.message,
        reasons=REASONS,
        max_message=MAX_MESSAGE_LENGTH,
    )


# Statistics ---------------------------------------------------------------------------------

CHART_WIDTH = 720
CHART_HEIGHT = 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 64, 16, 40
_STEPS = (0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5)


def chart(points: list[dict[str, Any]], threshold: float, warning_at: float) -> dict[str, Any]:
    """The geometry of the rate chart (an inline SVG the template draws): the daily rate,
    the threshold line and the warning band, on a scale that always shows the threshold."""
    top_value = max([threshold * 1.6, *(p["rate"] for p in points)])
    step = next((s for s in _STEPS if top_value / s <= 6), 1.0)
    y_max = min(1.0, step * -(-top_value // step)) or 1.0
    plot_w = CHART_WIDTH - _LEFT - _RIGHT
    plot_h = CHART_HEIGHT - _TOP - _BOTTOM

    def x(i: int) -> float:
        return round(_LEFT + (plot_w * i / (len(points) - 1) if len(points) > 1 else 0), 1)

    def y(value: float) -> float:
        return round(_TOP + plot_h * (1 - min(value, y_max) / y_max), 1)

    dots = [
        {"x": x(i), "y": y(p["rate"]), "at": p["at"], "rate": p["rate"], "counted": p["counted"]}
        for i, p in enumerate(points)
    ]
    ticks = []
    value = 0.0
    while value <= y_max + 1e-9:
        ticks.append({"value": value, "y": y(value)})
        value = round(value + step, 6)
    last = len(points) - 1
    x_ticks = [
        {"x": x(i), "at": points[i]["at"]}
        for i in sorted({*range(last % 10, last + 1, 10), last})
        if points
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": _LEFT,
        "right": CHART_WIDTH - _RIGHT,
        "top": _TOP,
        "bottom": CHART_HEIGHT - _BOTTOM,
        "line": " ".join(f"{d['x']},{d['y']}" for d in dots),
        "dots": dots,
        "ticks": ticks,
        "x_ticks": x_ticks,
        "threshold": {"value": threshold, "y": y(threshold)},
        "band": {"top": y(threshold), "height": round(y(warning_at) - y(threshold), 1)},
        "over": {"top": _TOP, "height": round(y(threshold) - _TOP, 1)},
    }


@router.get("/stats", response_class=HTMLResponse)
def stats_page(request: Request) -> Response:
    seller = _current(request)
    if seller is None:
        return _to_login(request)
    services = _system(request).services
    stats = policy.stats(services, seller.id)
    history = portal.rate_history(services, seller.id)
    return _render(
        request,
        "stats.html.j2",
        seller,
        nav="stats",
        stats=stats,
        history=history,
        chart=chart(history, stats["threshold"], stats["warning_at"]),
    )
