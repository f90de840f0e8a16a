"""What every seller page shares: rendering in the seller's language, the login redirect, the
sale-number check, and a route class that answers a missing sign-in with the login page."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from mailflow import i18n
from mailflow.schemas import MAX_ID
from mailflow.services.portal import SellerInfo
from mailflow.web.deps import SellerLoginRequired, pages_of
from mailflow.web.pages import browser_locale
from mailflow.web.session import csrf_token, pop_flashes

SESSION_NEXT = "seller_next"
SESSION_LOCALE = "locale"
LOGIN_PATH = "/seller/login"
HOME = "/seller/sales"


def render(
    request: Request,
    name: str,
    seller: SellerInfo | None,
    status_code: int = 200,
    *,
    locale: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """A seller page: in ``locale``, else the seller's language, else the browser's."""
    locale = locale or (seller.locale if seller else browser_locale(request))
    return pages_of(request).render(
        f"seller/{name}",
        locale,
        status_code,
        seller=seller,
        csrf=csrf_token(request),
        flashes=pop_flashes(request),
        **context,
    )


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def to_login(request: Request) -> RedirectResponse:
    """Back to the login page; a page asked for by GET is opened after logging in."""
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        request.session[SESSION_NEXT] = target
    return redirect(LOGIN_PATH)


def sale_number(raw: str) -> int | None:
    """A sale's number from the path, or None (answered as a sale that does not exist)."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None


def not_found(request: Request, seller: SellerInfo | None) -> HTMLResponse:
    return render(request, "notfound.html.j2", seller, 404)


def missing_page(request: Request, status_code: int) -> HTMLResponse:
    """An address under ``/seller`` that is no page (404) or does not take this method (405),
    answered as a page in the seller's language (the signed-in seller's, kept in the session,
    else the browser's), not the API's JSON."""
    if status_code == 405:
        title, body = "seller.notallowed.title", "seller.notallowed.body"
    else:
        title, body = "seller.notfound.title", "seller.notfound.body"
    locale = request.session.get(SESSION_LOCALE) or browser_locale(request)
    return render(
        request, "error.html.j2", None, status_code, locale=locale, title=title, body=body
    )


def t(seller: SellerInfo | None, key: str, **values: object) -> str:
    return i18n.t(seller.locale if seller else None, key, **values)


class SellerRoute(APIRoute):
    """Answers a page asked for without a signed-in seller with the login page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SellerLoginRequired:
                return to_login(request)

        return route
