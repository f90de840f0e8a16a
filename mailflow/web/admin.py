"""The admin console, ``/admin/…``: password sign-in for console users (``mailflow admin
create-user``), then templates (admins only), sellers, sales, the outbox and the inbox.

Signing in checks the CSRF token, then a limit on failed sign-ins per client address and per
email address (per process; successes are never counted), then the Argon2id hash; a wrong
email or password gets one generic message and no session. A successful sign-in gets a new
CSRF token. The pages live in ``admin_*`` modules by group; this one holds sign-in, sign-out
and the router that gathers them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from mailflow.services import accounts
from mailflow.services.context import ServiceContext
from mailflow.web import (
    admin_inbound,
    admin_mail,
    admin_sales,
    admin_templates,
    admin_webhooks,
    console_locale,
)
from mailflow.web.admin_core import LOGIN_PATH, AdminRoute, field, redirect, render, t
from mailflow.web.deps import (
    SESSION_CONSOLE_USER,
    ConsoleUserDep,
    MaybeConsoleUserDep,
    ServicesDep,
)
from mailflow.web.session import CSRF_FIELD, RateLimit, flash, form_with_csrf

LOGIN_ATTEMPTS = 10
LOGIN_WINDOW_SECONDS = 300
HOME = "/admin/sales"

router = APIRouter(prefix="/admin", include_in_schema=False, route_class=AdminRoute)


def _limit(request: Request) -> RateLimit:
    """The sign-in rate limit of this app (made on first use, kept on the app's state)."""
    state = request.app.state
    limit = getattr(state, "admin_login_limit", None)
    if limit is None:
        limit = state.admin_login_limit = RateLimit(LOGIN_ATTEMPTS, LOGIN_WINDOW_SECONDS)
    return limit


def _safe_next(target: str) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


@router.get("", response_class=HTMLResponse)
def home(user: ConsoleUserDep) -> Response:
    return redirect(HOME)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, user: MaybeConsoleUserDep, next: str = "") -> Response:
    if user is not None:
        return redirect(_safe_next(next))
    return render(request, "admin/login.html.j2", t("admin.login.title"), next=next, email="")


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, services: ServicesDep) -> Response:
    form = await form_with_csrf(request)
    return await run_in_threadpool(_login, request, services, form)


def _login(request: Request, services: ServiceContext, form: dict[str, Any]) -> Response:
    email, password = field(form, "email").strip(), field(form, "password")
    target = field(form, "next")
    client = request.client.host if request.client else "unknown"
    limit = _limit(request)
    keys = (f"client:{client}", f"email:{email.casefold()}")
    if any(limit.exceeded(key) for key in keys):
        return _login_again(request, 429, "admin.login.limited", email, target)
    user = accounts.authenticate(services, email, password)
    if user is None:
        # Only failures count: a team signing in from one office address is never locked out.
        for key in keys:
            limit.record(key)
        return _login_again(request, 401, "admin.login.failed", email, target)
    request.session.pop(CSRF_FIELD, None)
    request.session[SESSION_CONSOLE_USER] = accounts.start_session(
        services, accounts.SessionKind.CONSOLE, user.id
    )
    flash(request, t("admin.login.welcome", email=user.email, role=user.role.value))
    return redirect(_safe_next(target))


def _login_again(
    request: Request, status_code: int, message: str, email: str, target: str
) -> HTMLResponse:
    return render(
        request,
        "admin/login.html.j2",
        t("admin.login.title"),
        status_code,
        next=target,
        email=email,
        error=t(message),
    )


@router.post("/logout")
async def logout(request: Request, services: ServicesDep) -> Response:
    await form_with_csrf(request)
    token = request.session.pop(SESSION_CONSOLE_USER, None)
    await run_in_threadpool(accounts.end_session, services, token)
    request.session.pop(CSRF_FIELD, None)
    flash(request, t("admin.logout.done"))
    return redirect(LOGIN_PATH)


@router.post("/logout/everywhere")
async def logout_everywhere(
    request: Request, services: ServicesDep, user: MaybeConsoleUserDep
) -> Response:
    """Ends every session of the signed-in user: other browsers, copies of the cookie."""
    await form_with_csrf(request)
    request.session.pop(SESSION_CONSOLE_USER, None)
    request.session.pop(CSRF_FIELD, None)
    if user is not None:
        await run_in_threadpool(
            accounts.end_sessions, services, accounts.SessionKind.CONSOLE, user.id
        )
    flash(request, t("admin.logout.everywhere"))
    return redirect(LOGIN_PATH)


@router.post("/language")
async def language(request: Request) -> Response:
    """The viewer's choice of language for the console, kept in the session."""
    form = await form_with_csrf(request)
    console_locale.remember(request, field(form, "locale"))
    return redirect(_safe_next(field(form, "next")))


router.include_router(admin_templates.router)
router.include_router(admin_sales.router)
router.include_router(admin_mail.router)
router.include_router(admin_inbound.router)
router.include_router(admin_webhooks.router)
