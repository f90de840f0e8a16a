"""Browser sessions, CSRF protection, flash messages and a login rate limit for the pages.

Sessions are Starlette's signed cookies (itsdangerous, keyed by the newest secret key):
HttpOnly, SameSite=Lax, and Secure when ``server.base_url`` is https. Every form carries a
CSRF token bound to the session, checked before any state change.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from typing import Any

from fastapi import FastAPI, Request
from starlette.middleware.sessions import SessionMiddleware

from mailflow.bootstrap import System

SESSION_COOKIE = "mailflow_session"
SESSION_MAX_AGE = 8 * 3600
CSRF_FIELD = "csrf_token"


class CsrfError(Exception):
    """A form came without the session's CSRF token."""


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
        now = time.monotonic()
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and now - events[0] > self.seconds:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            return True
