"""One access line per request, its request id, and the request-duration histogram.

The request id is the caller's ``X-Request-ID`` when it is a sane one (up to 128 letters,
digits and ``.-_:``), else a new one; it is echoed in the answer's ``X-Request-ID`` and kept
in ``request.state.request_id``. ``mailflow_http_request_duration_seconds`` is labelled with
the route's template (``/api/v1/sales/{sale_id}``), never the raw path, so that its series stay
few; a request no route matches counts as ``unmatched``. The line logs the path with the
action and login tokens it may hold replaced by ``{token}``, and never the query string.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailflow.telemetry import Telemetry

log = logging.getLogger("mailflow.access")
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
SECRET_PARAMS = ("token",)


def request_id(headers: Headers) -> str:
    given = headers.get("x-request-id", "")
    return given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    """The template of the route that answered (``unmatched`` when none did)."""
    route: Any = scope.get("route")
    if route is None:
        return "unmatched"
    path = str(getattr(route, "path", "unmatched"))
    return path + "/{path}" if isinstance(route, Mount) else path


def _logged_path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    for name in SECRET_PARAMS:
        value = scope.get("path_params", {}).get(name)
        if isinstance(value, str) and value:
            path = path.replace(value, "{" + name + "}")
    return path


class AccessLog:
    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(Headers(scope=scope))
        scope.setdefault("state", {})["request_id"] = rid
        method = scope["method"]
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_of(scope)
            self.telemetry.http_request_duration_seconds.labels(route, method, str(status)).observe(
                elapsed
            )
            client = scope.get("client")
            log.info(
                '%s "%s %s" %s %.1fms',
                client[0] if client else "-",
                method,
                _logged_path(scope),
                status,
                elapsed * 1000,
                extra={
                    "request_id": rid,
                    "method": method,
                    "path": _logged_path(scope),
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
