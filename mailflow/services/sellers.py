"""Sellers: creation and look-up.

A seller is known by its address (case-insensitive): creating the same seller again (same
address, name and language: a retried request) answers the first one, ``created=False``; the
same address with other details is a conflict.
"""

from __future__ import annotations

from typing import Any

from mailflow.schemas import SellerIn
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict, NotFound
from mailflow.store.sellers import DuplicateSeller, SellerProfile


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
    """The seller, new or (the same request again) the existing one."""
    return add_seller(ctx, data)[0]


def add_seller(ctx: ServiceContext, data: SellerIn) -> tuple[dict[str, Any], bool]:
    """The seller, and whether this call created it (False: the same request again)."""
    try:
        made = ctx.sellers.create(data.name, data.email, data.locale, ctx.clock())
        return seller_view(made), True
    except DuplicateSeller:
        existing = ctx.sellers.by_email(data.email)
        if existing is None:  # pragma: no cover - deleted between the two statements
            raise
    if (existing.name, existing.locale) != (data.name, data.locale):
        raise Conflict(
            f"seller {existing.id} has the address {existing.email} already",
            code="seller_exists",
        )
    return seller_view(existing), False


def get_seller(ctx: ServiceContext, seller_id: int) -> dict[str, Any]:
    seller = ctx.sellers.get(seller_id)
    if seller is None:
        raise NotFound(f"no seller {seller_id}")
    return seller_view(seller)
