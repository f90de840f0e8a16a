"""The seller's pages, ``/seller/…``: login by emailed link (``seller_login``), "Toutes les
commandes" and a sale (``seller_sales``), and the rate over time (``seller_stats``).

Pages are in the seller's language (the browser's before login). Every form carries the
session's CSRF token, checked before anything else; a page asked for without a signed-in
seller answers with the login page (``seller_core.SellerRoute``).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

from mailflow.web import seller_login, seller_sales, seller_stats
from mailflow.web.seller_core import HOME, redirect

router = APIRouter(prefix="/seller", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def home() -> RedirectResponse:
    return redirect(HOME)


router.include_router(seller_login.router)
router.include_router(seller_sales.router)
router.include_router(seller_stats.router)
