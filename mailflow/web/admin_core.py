"""What every page of the admin console shares: rendering (with who is signed in, whom
``web.deps`` finds as it checks the roles), and a route class that answers a missing sign-in,
a missing role, a bad CSRF token, bad input or an unknown record with a page of the console
(never the JSON the API answers with).

Console pages are in the viewer's language (``console_locale``: their choice, else the
browser's, else English), times with their zone. They all render with ``scripts=True``:
mailflow's own ``admin.js`` (CSP ``script-src 'self'``), and frames from the same origin for
the sandboxed previews of email HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData

from mailflow import i18n
from mailflow.schemas import MAX_ID
from mailflow.services import console
from mailflow.services.accounts import ConsoleUser
from mailflow.services.errors import NotFound
from mailflow.web import console_locale
from mailflow.web.deps import ConsoleLoginRequired, NotAllowed, pages_of, system_of
from mailflow.web.session import CsrfError, csrf_token, pop_flashes

LOGIN_PATH = "/admin/login"

# The email HTML shown in a frame (a preview, a message of the outbox or the inbox): a
# sandboxed document of its own, with the inline styles mail needs and nothing else.
FRAME_HEADERS = {
    "Content-Security-Policy": (
        "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
    ),
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def t(key: str, /, **values: object) -> str:
    return i18n.t(console_locale.current(), key, **values)


def hint_words(code: str | None) -> str:
    """The words of a service's hint code, in the viewer's language."""
    return i18n.hint(console_locale.current(), code)


def field(form: FormData | dict[str, Any], name: str) -> str:
    """A text field of a submitted form ('' when absent or a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def number(text: str, minimum: int = 0) -> int | None:
    """A whole number typed in a form (ASCII digits, ``minimum`` to MAX_ID), else None."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if minimum <= value <= MAX_ID else None


def page_number(value: int | None) -> int:
    return value if value is not None and value >= 1 else 1


def shows_inbox(request: Request) -> bool:
    """The inbox is in the menu when the embedded inbox runs, or when it holds messages."""
    system = system_of(request)
    return system.settings.smtp.mode == "embedded" or console.inbox_has_messages(system.services)


def _nav(request: Request, user: ConsoleUser | None) -> list[dict[str, Any]]:
    if user is None:
        return []
    items = []
    if user.can_edit_templates:
        items.append(("/admin/templates", t("admin.nav.templates")))
    items += [
        ("/admin/sellers", t("admin.nav.sellers")),
        ("/admin/sales", t("admin.nav.sales")),
        ("/admin/outbox", t("admin.nav.outbox")),
        ("/admin/bounces", t("admin.nav.bounces")),
        ("/admin/webhooks", t("admin.nav.webhooks")),
    ]
    if shows_inbox(request):
        items.append(("/admin/inbox", t("admin.nav.inbox")))
    path = request.url.path
    return [
        {"url": url, "label": label, "current": path == url or path.startswith(url + "/")}
        for url, label in items
    ]


def render(
    request: Request, name: str, title: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A console page, with the signed-in user, the menu, a CSRF token and the flashes."""
    pages = pages_of(request)
    user: ConsoleUser | None = getattr(request.state, "console_user", None)
    query = f"?{request.url.query}" if request.url.query else ""
    return pages.render(
        name,
        console_locale.current(),
        status_code,
        scripts=True,
        zone_shown=True,
        zone_name=pages.timezone,
        languages=console_locale.LANGUAGES,
        here=request.url.path + query if request.method == "GET" else request.url.path,
        title=title,
        user=user,
        nav=_nav(request, user),
        csrf=csrf_token(request),
        flashes=pop_flashes(request),
        **context,
    )


def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    return render(request, "admin/error.html.j2", title, status_code, message=message)


def missing_page(request: Request, status_code: int) -> HTMLResponse:
    """An address under ``/admin`` that is no page (404) or does not take this method (405),
    answered as a console page in the viewer's language, not the API's JSON."""
    with console_locale.answering(request):
        if status_code == 405:
            return error_page(request, 405, t("admin.notallowed.title"), t("admin.notallowed.body"))
        return error_page(request, 404, t("admin.notfound.title"), t("admin.notfound.page"))


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _login_redirect(request: Request) -> RedirectResponse:
    if request.method != "GET":
        return redirect(LOGIN_PATH)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"{LOGIN_PATH}?{urlencode({'next': target})}")


class AdminRoute(APIRoute):
    """Turns the console's exceptions into console pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            with console_locale.answering(request):
                return await answer(request)

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ConsoleLoginRequired:
                return _login_redirect(request)
            except NotAllowed as exc:
                why = t(f"admin.forbidden.{exc.what}", role=exc.role.value)
                return error_page(request, 403, t("admin.forbidden.title"), why)
            except CsrfError:
                return error_page(request, 403, t("forbidden.title"), t("forbidden.body"))
            except NotFound as exc:
                return error_page(request, 404, t("admin.notfound.title"), exc.message)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
                )
                return error_page(request, 400, t("admin.invalid.title"), problems)

        return route
