"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served offline.

Their scripts and styles come from the ``fastapi-offline`` package, which ships Swagger UI's
and ReDoc's built files inside its wheel (no CDN, no download at run time); mailflow mounts
that folder at ``/static/apidocs``. The pages themselves carry no inline script (Swagger UI is
started by ``/static/swagger-init.js``; ReDoc by its ``<redoc>`` element), so their
Content-Security-Policy allows scripts from mailflow only. Both UIs style their elements at
run time, hence ``style-src 'unsafe-inline'`` on these two pages alone.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from mailflow.web.pages import PAGE_HEADERS

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/static/apidocs"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {**PAGE_HEADERS, "Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str) -> HTMLResponse:
    pages = request.app.state.pages
    html = pages.env.get_template(f"docs/{name}.html.j2").render(
        assets=ASSETS_URL, openapi_url=request.app.openapi_url, title=request.app.title
    )
    return HTMLResponse(html, headers=HEADERS)


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    return _page(request, "swagger")


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    return _page(request, "redoc")


def install(app: FastAPI) -> None:
    """Add the two pages and their assets (the app is made with ``docs_url=None`` and
    ``redoc_url=None``, FastAPI's CDN-backed pages)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), "apidocs")
    app.include_router(router)
