"""Browser sessions, CSRF protection, flash messages and a login rate limit for the pages.

Sessions are Starlette's signed cookies (itsdangerous, keyed by the newest secret key):
HttpOnly, SameSite=Lax, and Secure when ``server.base_url`` is https. Who is signed in is
not the cookie's word alone: it holds the token of a server-side session
(``services.accounts.start_session``), checked on every request and deleted at sign-out.
Every form carries a CSRF token bound to the session, checked before any state change.
Before that, a page request with an unsafe method (POST, PUT, PATCH, DELETE) is refused when
the browser says it comes from another site: an ``Origin`` that is neither
``server.base_url``'s nor the request's own, or, without ``Origin`` (or with ``null``, which
browsers send from a page with ``Referrer-Policy: no-referrer``), ``Sec-Fetch-Site:
cross-site``. The JSON API (bearer tokens, no cookies) is not concerned.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from mailflow.bootstrap import System
from mailflow.services import accounts

SESSION_COOKIE = "mailflow_session"
SESSION_MAX_AGE = accounts.SESSION_HOURS * 3600
CSRF_FIELD = "csrf_token"


class CsrfError(Exception):
    """A form came without the session's CSRF token."""


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lowercased, without the default port."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    try:
        port = parts.port
    except ValueError:
        return "invalid"
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


class CrossSiteFormCheck:
    """Refuses a page request with an unsafe method that a browser says comes from another
    site, before anything reads its form (and so before its CSRF token is looked at)."""

    def __init__(self, app: ASGIApp, base_url: str) -> None:
        self.app = app
        self.own = origin_of(base_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and not scope["path"].startswith("/api/")
            and self._cross_site(scope)
        ):
            app = scope["app"]
            response = app.state.pages.render("forbidden.html.j2", None, 403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _cross_site(self, scope: Scope) -> bool:
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        # "null": what a browser sends from a page with Referrer-Policy: no-referrer (every
        # page here); then Sec-Fetch-Site is its word.
        if origin is None or origin == b"null":
            return bool(headers.get(b"sec-fetch-site", b"").lower() == b"cross-site")
        given = origin_of(origin.decode("latin-1"))
        if given == self.own:
            return False
        host = headers.get(b"host", b"").decode("latin-1")
        scheme = str(scope.get("scheme", "http"))
        return not host or given != origin_of(f"{scheme}://{host}")


def install(app: FastAPI, system: System) -> None:
    base_url = system.settings.server.base_url
    app.add_middleware(
        SessionMiddleware,
        secret_key=system.settings.security.secret_keys[-1],
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=base_url.startswith("https://"),
    )
    app.add_middleware(CrossSiteFormCheck, base_url=base_url)


def csrf_token(request: Request) -> str:
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


async def form_with_csrf(request: Request) -> dict[str, Any]:
    """The submitted form, once its CSRF token has been checked (raises CsrfError)."""
    form = await request.form()
    given = form.get(CSRF_FIELD)
    expected = request.session.get(CSRF_FIELD)
    if (
        not isinstance(given, str)
        or not isinstance(expected, str)
        or not hmac.compare_digest(given, expected)
    ):
        raise CsrfError("missing or wrong CSRF token")
    return {k: v for k, v in form.items() if k != CSRF_FIELD}


def flash(request: Request, message: str, kind: str = "ok") -> None:
    # Reassigned, not appended in place: the session only notices assignments.
    request.session["flash"] = [
        *request.session.get("flash", []),
        {"kind": kind, "message": message},
    ]


def pop_flashes(request: Request) -> list[dict[str, str]]:
    return list(request.session.pop("flash", []))


class RateLimit:
    """At most ``limit`` events per ``seconds`` for a key (per process)."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Whether an event for ``key`` is within the limit; if so, it is counted."""
        with self._lock:
            if self._full(key):
                return False
            self._events[key].append(time.monotonic())
            return True

    def exceeded(self, key: str) -> bool:
        """Whether ``key`` has used up its events, without counting one (see ``record``)."""
        with self._lock:
            return self._full(key)

    def record(self, key: str) -> None:
        """Count one event for ``key`` (e.g. a failed sign-in)."""
        with self._lock:
            self._full(key)
            self._events[key].append(time.monotonic())

    def _full(self, key: str) -> bool:
        now = time.monotonic()
        events = self._events.setdefault(key, deque())
        while events and now - events[0] > self.seconds:
            events.popleft()
        return len(events) >= self.limit
