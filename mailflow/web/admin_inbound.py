"""Console pages for inbound mail: the received messages with their verdicts (bounces, and
what else arrives at the inbound server) and the suppression list, where an address is lifted
so the mail held for it goes out."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from mailflow import i18n
from mailflow.services import suppressions
from mailflow.services.context import ServiceContext
from mailflow.services.errors import NotFound
from mailflow.web.admin_core import AdminRoute, field, page_number, redirect, render, t
from mailflow.web.console_locale import current
from mailflow.web.deps import ConsoleUserDep, IdPath, ServicesDep
from mailflow.web.session import flash, form_with_csrf

router = APIRouter(route_class=AdminRoute)

PAGE_SIZE = 50


def _paged(
    request: Request,
    page: int | None,
    fetch: Callable[..., Any],
    template: str,
    title: str,
    tab: str,
) -> HTMLResponse:
    """One page of a listing (received messages, suppressions), ``PAGE_SIZE`` rows a page."""
    number = page_number(page)
    offset = (number - 1) * PAGE_SIZE
    found = fetch(limit=PAGE_SIZE, offset=offset)
    return render(
        request,
        template,
        title,
        rows=found.rows,
        total=found.total,
        page=number,
        has_next=offset + len(found.rows) < found.total,
        tab=tab,
    )


@router.get("/bounces", response_class=HTMLResponse)
def bounces_page(
    request: Request, user: ConsoleUserDep, ctx: ServicesDep, page: int | None = None
) -> HTMLResponse:
    fetch = partial(suppressions.list_received, ctx)
    return _paged(request, page, fetch, "admin/bounces.html.j2", t("admin.nav.bounces"), "bounces")


@router.get("/bounces/{message_id}", response_class=HTMLResponse)
def received_page(
    request: Request, message_id: IdPath, user: ConsoleUserDep, ctx: ServicesDep
) -> HTMLResponse:
    row = suppressions.received_message(ctx, message_id)
    return render(
        request,
        "admin/received.html.j2",
        t("admin.received.title", id=message_id),
        row=row,
    )


@router.get("/suppressions", response_class=HTMLResponse)
def suppressions_page(
    request: Request, user: ConsoleUserDep, ctx: ServicesDep, page: int | None = None
) -> HTMLResponse:
    fetch = partial(suppressions.list_suppressions, ctx)
    title = t("admin.suppressions.title")
    return _paged(request, page, fetch, "admin/suppressions.html.j2", title, "suppressions")


@router.post("/suppressions/lift")
async def lift(request: Request, user: ConsoleUserDep, ctx: ServicesDep) -> Response:
    form = await form_with_csrf(request)
    return await run_in_threadpool(_lift, request, ctx, field(form, "email"))


def _lift(request: Request, ctx: ServiceContext, email: str) -> Response:
    email = email.strip()
    try:
        requeued = suppressions.lift(ctx, email) if email else None
    except NotFound:
        requeued = None
    if requeued is None:
        flash(request, t("admin.suppressions.not_listed", email=email[:320]), "error")
    else:
        words = i18n.tn(current(), "admin.suppressions.lifted", requeued, email=email.lower())
        flash(request, words)
    return redirect("/admin/suppressions")
