"""Listings, known by ``(seller_id, sku)``: read and restock."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mailflow.schemas import ListingIn
from mailflow.services.context import ServiceContext
from mailflow.services.errors import NotFound
from mailflow.store.models import Listing


def listing_view(listing: Listing) -> dict[str, Any]:
    return {
        "seller_id": listing.seller_id,
        "sku": listing.sku,
        "title": listing.title,
        "stock": listing.stock,
        "active": listing.active,
        "updated_at": listing.updated_at,
    }


def _find(session: Any, seller_id: int, sku: str) -> Listing:
    listing = session.execute(
        select(Listing).where(Listing.seller_id == seller_id, Listing.sku == sku)
    ).scalar()
    if listing is None:
        raise NotFound(f"seller {seller_id} has no listing {sku!r}")
    return listing  # type: ignore[no-any-return]


def get_listing(ctx: ServiceContext, seller_id: int, sku: str) -> dict[str, Any]:
    with ctx.db.read() as session:
        return listing_view(_find(session, seller_id, sku))


def update_listing(
    ctx: ServiceContext, seller_id: int, sku: str, data: ListingIn
) -> dict[str, Any]:
    with ctx.db.transaction() as session:
        listing = _find(session, seller_id, sku)
        fields = data.model_dump(exclude_unset=True)
        if "stock" in fields:
            listing.stock = data.stock
        if "active" in fields:
            listing.active = bool(data.active)
        listing.updated_at = ctx.clock()
        session.add(listing)
        session.flush()
        return listing_view(listing)
