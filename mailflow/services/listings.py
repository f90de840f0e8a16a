"""Listings, known by ``(seller_id, sku)``: read and restock."""

from __future__ import annotations

from typing import Any

from mailflow.schemas import ListingIn
from mailflow.services.context import ServiceContext
from mailflow.services.errors import NotFound
from mailflow.store.listings import Listing, Restock


def listing_view(listing: Listing) -> dict[str, Any]:
    return {
        "seller_id": listing.seller_id,
        "sku": listing.sku,
        "title": listing.title,
        "stock": listing.stock,
        "active": listing.active,
        "updated_at": listing.updated_at,
    }


def _found(listing: Listing | None, seller_id: int, sku: str) -> Listing:
    if listing is None:
        raise NotFound(f"seller {seller_id} has no listing {sku!r}")
    return listing


def get_listing(ctx: ServiceContext, seller_id: int, sku: str) -> dict[str, Any]:
    return listing_view(_found(ctx.listings.get(seller_id, sku), seller_id, sku))


def update_listing(
    ctx: ServiceContext, seller_id: int, sku: str, data: ListingIn
) -> dict[str, Any]:
    """Only the fields the request names change; ``stock: null`` means no stock count."""
    fields = data.model_dump(exclude_unset=True)
    change = Restock(
        set_stock="stock" in fields,
        stock=data.stock,
        active=bool(data.active) if "active" in fields else None,
    )
    updated = ctx.listings.update(seller_id, sku, change, ctx.clock())
    return listing_view(_found(updated, seller_id, sku))
