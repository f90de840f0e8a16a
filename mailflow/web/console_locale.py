"""The admin console's language: the one its viewer chose (kept in the session), else the
first of the browser's ``Accept-Language`` that mailflow speaks, else English, the console's
language before it spoke French (and what a client stating no language still gets).

The locale of the request being answered is held in a context variable, set by the console's
route class, so that the console's ``t(key)`` words messages, flashes and errors in the
viewer's language without a request to pass around. (Starlette copies the context into the
thread pool that runs sync routes, so the value follows the request there.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from starlette.requests import Request

from mailflow.i18n import from_accept_language, supported

CONSOLE_DEFAULT_LOCALE = "en"
SESSION_LOCALE = "console_locale"
# Each language named in itself, for the switch in the console's header.
LANGUAGES = (("fr", "Français"), ("en", "English"))

_current: ContextVar[str] = ContextVar("console_locale", default=CONSOLE_DEFAULT_LOCALE)


def choose(request: Request) -> str:
    chosen = supported(request.session.get(SESSION_LOCALE))
    browser = from_accept_language(request.headers.get("accept-language"))
    return chosen or browser or CONSOLE_DEFAULT_LOCALE


def remember(request: Request, locale: str) -> None:
    """Keeps the viewer's choice (an unsupported code is ignored)."""
    code = supported(locale)
    if code:
        request.session[SESSION_LOCALE] = code


def current() -> str:
    return _current.get()


@contextmanager
def answering(request: Request) -> Iterator[str]:
    """The console's locale while ``request`` is answered."""
    token = _current.set(choose(request))
    try:
        yield _current.get()
    finally:
        _current.reset(token)
