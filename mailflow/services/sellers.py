"""Sellers: creation and look-up."""

from __future__ import annotations

from typing import Any

from mailflow.schemas import SellerIn
from mailflow.services.context import ServiceContext
from mailflow.services.errors import NotFound
from mailflow.store.sellers import SellerProfile


def seller_view(seller: SellerProfile) -> dict[str, Any]:
    return {
        "id": seller.id,
        "name": seller.name,
        "email": seller.email,
        "locale": seller.locale,
        "created_at": seller.created_at,
        "suspended_until": seller.suspended_until,
    }


def create_seller(ctx: ServiceContext, data: SellerIn) -> dict[str, Any]:
    return seller_view(ctx.sellers.create(data.name, data.email, data.locale, ctx.clock()))


def get_seller(ctx: ServiceContext, seller_id: int) -> dict[str, Any]:
    seller = ctx.sellers.get(seller_id)
    if seller is None:
        raise NotFound(f"no seller {seller_id}")
    return seller_view(seller)
