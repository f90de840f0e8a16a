"""The FastAPI application: JSON API, action links, health and metrics."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from mailflow import __version__, i18n
from mailflow.bootstrap import System
from mailflow.services import health
from mailflow.services import metrics as figures
from mailflow.services.errors import Conflict, InvalidInput, NotFound, ServiceError
from mailflow.services.templates import TemplateInvalid
from mailflow.telemetry import CONTENT_TYPE_LATEST
from mailflow.web import (
    actions,
    admin_core,
    api,
    api_messages,
    api_suppressions,
    api_templates,
    api_webhooks,
    docs_pages,
    ops,
    seller_core,
    session,
)
from mailflow.web.access import AccessLog
from mailflow.web.admin import router as admin_router
from mailflow.web.api_models import HealthOut
from mailflow.web.auth import ApiAuthMiddleware
from mailflow.web.body_limit import BodyLimit
from mailflow.web.deps import ServicesDep, pages_of
from mailflow.web.head import HeadAsGet
from mailflow.web.pages import Pages, browser_locale
from mailflow.web.responses import errors
from mailflow.web.seller import router as seller_router
from mailflow.web.session import CsrfError
from mailflow.web.threads import ThreadLimit

API_DESCRIPTION = """A marketplace's order-refusal and cancellation workflow, run by email.

Every `/api/v1` call takes `Authorization: Bearer <token>` (a token of `[api] tokens`; the
development defaults print one at `mailflow serve`). Errors answer JSON with a stable `error`
code: `400 malformed_json`, `401 unauthorized`, `404 not_found`, `409` with `status` and
`hint`, `413 too_large`, `422 invalid` with `detail: [{field, message, type}]`."""

# The API speaks English: its hints are worded for a developer reading the answer.
API_LOCALE = "en"

log = logging.getLogger(__name__)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "path", "query", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse(
            {"error": "malformed_json", "message": "the request body is not valid JSON"},
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    detail = [{"field": _field(e["loc"]), "message": e["msg"], "type": e["type"]} for e in errors]
    return JSONResponse(
        {"error": "invalid", "detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if isinstance(exc, InvalidInput):
        detail = [{"field": exc.field, "message": exc.message, "type": "value_error"}]
        return JSONResponse({"error": "invalid", "detail": detail}, status_code=422)
    code = {NotFound: 404, Conflict: 409}.get(type(exc), 400)
    body: dict[str, Any] = {"error": exc.code, "message": exc.message}
    if exc.status is not None:
        body["status"] = exc.status
    if exc.hint is not None:
        body["hint"] = i18n.hint(API_LOCALE, exc.hint)
    return JSONResponse(body, status_code=code)


def _allowed(request: Request) -> str:
    """Every method the path answers: FastAPI makes one route per method, and a 405 would name
    only the first route's (HEAD comes with GET: ``web.head``)."""
    allowed = [
        method
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]
    if "GET" in allowed:
        allowed.insert(1, "HEAD")
    return ", ".join(allowed)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed(request)}
    missing_page = _PAGES.get(request.url.path.split("/", 2)[1])
    if missing_page is not None and exc.status_code in (404, 405):
        # A person's browser, not an API client: a page in their language.
        page = missing_page(request, exc.status_code)
        page.headers.update(headers or {})
        return page
    if exc.status_code == 400 and request.url.path.startswith("/api/"):
        # FastAPI's answer to a body it cannot decode (e.g. not UTF-8).
        body: Any = {"error": "malformed_json", "message": "the request body is not valid JSON"}
    elif isinstance(exc.detail, dict):
        body = exc.detail
    else:
        body = {"error": _ERROR_CODES.get(exc.status_code, "error"), "message": str(exc.detail)}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


_ERROR_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}
# The first segment of the browser pages' addresses, and how each words a page it lacks.
_PAGES = {"admin": admin_core.missing_page, "seller": seller_core.missing_page}


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    """The database is out of reach or out of connections: try again, nothing was done."""
    log.error("database unavailable: %s", exc)
    headers = {"Retry-After": "5"}
    if request.url.path.startswith("/api/"):
        body = {"error": "unavailable", "message": "the database is busy; retry shortly"}
        return JSONResponse(body, status_code=503, headers=headers)
    return PlainTextResponse(
        "Service busy, nothing was changed: retry in a few seconds.", 503, headers=headers
    )


async def _csrf_error(request: Request, exc: Exception) -> HTMLResponse:
    return pages_of(request).render("forbidden.html.j2", request.session.get("locale"), 403)


def create_app(system: System) -> FastAPI:
    app = FastAPI(
        title="mailflow",
        version=__version__,
        description=API_DESCRIPTION,
        # /docs and /redoc are mailflow's own, with their assets served offline (docs_pages).
        docs_url=None,
        redoc_url=None,
    )
    app.state.system = system
    app.state.pages = Pages(system.templates, system.settings.server.timezone)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(ApiAuthMiddleware, tokens=system.settings.api.tokens)
    app.add_middleware(ThreadLimit, threads=system.settings.server.threads)
    app.add_exception_handler(CsrfError, _csrf_error)
    for unavailable in health.DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, _database_unavailable)
    session.install(app, system)
    app.include_router(api.router)
    app.include_router(api_messages.router)
    app.include_router(api_templates.router)
    app.include_router(api_suppressions.router)
    app.include_router(api_webhooks.router)
    app.add_exception_handler(TemplateInvalid, api_templates.invalid_template)
    app.include_router(actions.router)
    app.include_router(seller_router)
    app.include_router(admin_router)
    app.include_router(ops.router)
    docs_pages.install(app)
    app.mount("/static", StaticFiles(directory=system.templates / "web" / "static"), "static")

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        """Where to go: the console, the seller portal, the inbox, the API docs."""
        return pages_of(request).render("home.html.j2", browser_locale(request))

    @app.get("/healthz", tags=["ops"], response_model=HealthOut)
    async def healthz() -> dict[str, str]:
        """The process answers (no database work: `/readyz` says whether it can work)."""
        return {"status": "ok"}

    @app.get(
        "/metrics",
        tags=["ops"],
        response_class=PlainTextResponse,
        responses=errors(
            503, extra={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}}
        ),
    )
    def metrics(services: ServicesDep) -> Response:
        counts = figures.status_counts_of(services)
        lines = [
            "# HELP mailflow_outbox_messages Outbox messages by status.",
            "# TYPE mailflow_outbox_messages gauge",
            *(f'mailflow_outbox_messages{{status="{s}"}} {n}' for s, n in counts.outbox),
            "# HELP mailflow_outbox_oldest_queued_seconds Age of the oldest queued email.",
            "# TYPE mailflow_outbox_oldest_queued_seconds gauge",
            f"mailflow_outbox_oldest_queued_seconds {counts.oldest_queued_seconds:.3f}",
            "# HELP mailflow_sales Sales by status.",
            "# TYPE mailflow_sales gauge",
            *(f'mailflow_sales{{status="{s}"}} {n}' for s, n in counts.sales),
        ]
        body = ("\n".join(lines) + "\n").encode() + system.telemetry.exposition()
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    # Outermost last: the access line and request id see every answer, the 413 included.
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodyLimit, max_bytes=system.settings.server.max_body_bytes)
    app.add_middleware(AccessLog, telemetry=system.telemetry)
    return app
