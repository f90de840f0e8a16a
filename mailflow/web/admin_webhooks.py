"""Console pages for webhooks: the endpoints (enable one that was disabled), their deliveries
with every attempt (time, status, duration, the start of the answer), and replay."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from mailflow.services import webhooks
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict
from mailflow.web.admin_core import AdminRoute, redirect, render, t
from mailflow.web.deps import ConsoleUserDep, IdPath, ServicesDep
from mailflow.web.session import flash, form_with_csrf

router = APIRouter(route_class=AdminRoute)

SHOWN = 50


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks_page(
    request: Request, user: ConsoleUserDep, ctx: ServicesDep, endpoint: int | None = None
) -> HTMLResponse:
    endpoints = webhooks.list_endpoints(ctx)
    chosen = next((e for e in endpoints if e["id"] == endpoint), None)
    if chosen is not None:
        deliveries = webhooks.deliveries_of(ctx, chosen["id"], limit=SHOWN)
    else:
        deliveries = webhooks.recent_deliveries(ctx, limit=SHOWN)
    return render(
        request,
        "admin/webhooks.html.j2",
        t("admin.nav.webhooks"),
        endpoints=endpoints,
        chosen=chosen,
        deliveries=deliveries,
    )


@router.get("/webhooks/deliveries/{delivery_id}", response_class=HTMLResponse)
def delivery_page(
    request: Request, delivery_id: IdPath, user: ConsoleUserDep, ctx: ServicesDep
) -> HTMLResponse:
    found = webhooks.get_delivery(ctx, delivery_id)
    return render(
        request,
        "admin/webhook_delivery.html.j2",
        t("admin.webhooks.delivery", id=delivery_id),
        delivery=found,
        endpoint=webhooks.get_endpoint(ctx, found["endpoint_id"]),
    )


@router.post("/webhooks/deliveries/{delivery_id}/replay")
async def replay(
    request: Request, delivery_id: IdPath, user: ConsoleUserDep, ctx: ServicesDep
) -> Response:
    await form_with_csrf(request)
    return await run_in_threadpool(_replay, request, ctx, delivery_id)


def _replay(request: Request, ctx: ServiceContext, delivery_id: int) -> Response:
    try:
        webhooks.replay(ctx, delivery_id)
    except Conflict as exc:
        flash(request, exc.message, "error")
    else:
        flash(request, t("admin.webhooks.replayed", id=delivery_id))
    return redirect(f"/admin/webhooks/deliveries/{delivery_id}")


@router.post("/webhooks/{endpoint_id}/enable")
async def enable(
    request: Request, endpoint_id: IdPath, user: ConsoleUserDep, ctx: ServicesDep
) -> Response:
    await form_with_csrf(request)
    await run_in_threadpool(webhooks.set_enabled, ctx, endpoint_id, True)
    flash(request, t("admin.webhooks.enabled", id=endpoint_id))
    return redirect(f"/admin/webhooks?endpoint={endpoint_id}")
