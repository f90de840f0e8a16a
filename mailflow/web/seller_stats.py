"""The seller's rate over time: the rate, the tier, the thresholds, the sales that count, and
the daily rate of the last days drawn as a chart (its geometry is ``web.chart``).

The tier is worded for what it means. Below ``policy.min_sales`` the tier stays ``ok`` whatever
the rate, so the page says "not enough sales yet for an alert" and where the rate stands
against the threshold, never "good"; a rate at or over the warning rate is never called good
either (the tier catches up at the next evaluation)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from mailflow.services import policy, portal
from mailflow.web.chart import rate_chart
from mailflow.web.deps import SellerDep, ServicesDep
from mailflow.web.seller_core import SellerRoute, render

router = APIRouter(route_class=SellerRoute)


def standing(stats: dict[str, Any]) -> dict[str, str]:
    """The tier as the page words it: the label's and the help's message keys, the style."""
    tier = str(stats["tier"])
    rate, threshold, warning_at = stats["rate"], stats["threshold"], stats["warning_at"]
    place = "over" if rate >= threshold else "warning" if rate >= warning_at else "under"
    if tier == "ok" and stats["counted"] < stats["min_sales"]:
        return {
            "label": "seller.tier.few",
            "help": f"seller.tier_help.few_{place}",
            "css": "few" if place == "under" else f"few-{place}",
        }
    if tier == "ok" and place != "under":
        return {
            "label": "seller.tier.pending",
            "help": "seller.tier_help.pending",
            "css": "warning",
        }
    return {"label": f"seller.tier.{tier}", "help": f"seller.tier_help.{tier}", "css": tier}


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
        standing=standing(stats),
        history=history,
        chart=rate_chart(history, stats["threshold"], stats["warning_at"]),
    )
