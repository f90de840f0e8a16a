"""The seller's login by emailed link, and logout.

Login links are scanner-safe like action links: the GET shows a button and spends nothing;
the POST spends the link (once) and opens the session. Asking for a link answers the same
whatever the address, and the link is made after the answer has gone (a background task),
so neither the page nor its timing tells whether a seller has that address.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from mailflow import i18n
from mailflow.services import accounts, portal
from mailflow.web.deps import SESSION_SELLER, CsrfForm, MaybeSellerDep, ServicesDep
from mailflow.web.pages import browser_locale
from mailflow.web.seller_core import (
    HOME,
    LOGIN_PATH,
    SESSION_LOCALE,
    SESSION_NEXT,
    SellerRoute,
    redirect,
    render,
    t,
)
from mailflow.web.session import RateLimit, flash

router = APIRouter(route_class=SellerRoute)

LIMIT_WINDOW_SECONDS = 15 * 60
LIMIT_PER_ADDRESS = 5
LIMIT_PER_IP = 20
_limits_lock = threading.Lock()


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
    return limits


def _next_page(request: Request) -> str:
    target = request.session.pop(SESSION_NEXT, None)
    if isinstance(target, str) and target.startswith("/seller/") and "//" not in target:
        return target
    return HOME


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, seller: MaybeSellerDep) -> Response:
    if seller is not None:
        return redirect(HOME)
    return render(request, "login.html.j2", None, email="", error=None)


@router.post("/login", response_class=HTMLResponse)
async def login_request(request: Request, form: CsrfForm, services: ServicesDep) -> Response:
    raw = form.get("email")
    email = raw.strip() if isinstance(raw, str) else ""
    limits = _limits(request)
    client = request.client.host if request.client else "unknown"
    if not limits.by_ip.allow(client):
        return _limited(request)
    address = accounts.normalized_email(email) if len(email) <= 320 else None
    if address is None:
        why = "seller.login.bad_email" if email else "seller.login.no_email"
        error = i18n.t(browser_locale(request), why)
        return render(request, "login.html.j2", None, 422, email=email, error=error)
    if not limits.by_address.allow(address.lower()):
        return _limited(request)
    response = render(
        request,
        "login_sent.html.j2",
        None,
        email=address,
        minutes=accounts.LOGIN_LINK_MINUTES,
    )
    response.background = BackgroundTask(accounts.request_login_link, services, address)
    return response


def _limited(request: Request) -> HTMLResponse:
    response = render(request, "limited.html.j2", None, 429, minutes=LIMIT_WINDOW_SECONDS // 60)
    response.headers["Retry-After"] = str(LIMIT_WINDOW_SECONDS)
    return response


_LOGIN_FAILURES = {"invalid": 400, "expired": 410, "used": 410}


def _login_failed(request: Request, why: str) -> HTMLResponse:
    why = why if why in _LOGIN_FAILURES else "invalid"
    return render(request, "login_failed.html.j2", None, _LOGIN_FAILURES[why], why=why)


@router.get("/login/{token}", response_class=HTMLResponse)
def login_confirm(request: Request, token: str, services: ServicesDep) -> Response:
    """The page an emailed login link opens: a button; the link is not spent by a GET."""
    try:
        seller_id = portal.login_link_seller(services, token)
    except accounts.LoginFailed as failed:
        return _login_failed(request, str(failed))
    seller = portal.seller_info(services, seller_id)
    if seller is None:
        return _login_failed(request, "invalid")
    return render(request, "login_confirm.html.j2", None, locale=seller.locale, who=seller)


@router.post("/login/{token}", response_class=HTMLResponse)
async def login_use(
    request: Request, token: str, form: CsrfForm, services: ServicesDep
) -> Response:
    try:
        seller_id = await run_in_threadpool(accounts.use_login_link, services, token)
    except accounts.LoginFailed as failed:
        return _login_failed(request, str(failed))
    seller = await run_in_threadpool(portal.seller_info, services, seller_id)
    if seller is None:
        return _login_failed(request, "invalid")
    request.session[SESSION_SELLER] = await run_in_threadpool(
        accounts.start_session, services, accounts.SessionKind.SELLER, seller.id
    )
    request.session[SESSION_LOCALE] = seller.locale
    flash(request, t(seller, "seller.login.welcome", name=seller.name))
    return redirect(_next_page(request))


@router.post("/logout", response_class=HTMLResponse)
async def logout(
    request: Request, form: CsrfForm, seller: MaybeSellerDep, services: ServicesDep
) -> Response:
    await run_in_threadpool(accounts.end_session, services, request.session.get(SESSION_SELLER))
    for key in (SESSION_SELLER, SESSION_NEXT, SESSION_LOCALE):
        request.session.pop(key, None)
    flash(request, t(seller, "seller.logout.done"))
    return redirect(LOGIN_PATH)
