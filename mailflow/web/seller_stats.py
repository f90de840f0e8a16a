"""The seller's rate over time: the rate, the tier, the thresholds, the sales that count, and
the daily rate of the last days drawn as a chart (its geometry is ``web.chart``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from mailflow.services import policy, portal
from mailflow.web.chart import rate_chart
from mailflow.web.deps import SellerDep, ServicesDep
from mailflow.web.seller_core import SellerRoute, render

router = APIRouter(route_class=SellerRoute)


@router.get("/stats", response_class=HTMLResponse)
def stats_page(request: Request, seller: SellerDep, services: ServicesDep) -> Response:
    stats = policy.stats(services, seller.id)
    history = portal.rate_history(services, seller.id)
    return render(
        request,
        "stats.html.j2",
        seller,
        nav="stats",
        stats=stats,
        history=history,
        chart=rate_chart(history, stats["threshold"], stats["warning_at"]),
    )
