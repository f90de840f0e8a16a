"""Sellers: creation and look-up."""

from __future__ import annotations

from typing import Any

from mailflow.schemas import SellerIn
from mailflow.services.context import ServiceContext
from mailflow.services.errors import NotFound
from mailflow.store.models import Seller


def seller_view(seller: Seller) -> dict[str, Any]:
    return {
        "id": seller.id,
        "name": seller.name,
        "email": seller.email,
        "locale": seller.locale,
        "created_at": seller.created_at,
        "suspended_until": seller.suspended_until,
    }


def create_seller(ctx: ServiceContext, data: SellerIn) -> dict[str, Any]:
    with ctx.db.transaction() as session:
        seller = Seller(
            name=data.name, email=data.email, locale=data.locale, created_at=ctx.clock()
        )
        session.add(seller)
        session.flush()
        return seller_view(seller)


def get_seller(ctx: ServiceContext, seller_id: int) -> dict[str, Any]:
    with ctx.db.read() as session:
        seller = session.get(Seller, seller_id)
        if seller is None:
            raise NotFound(f"no seller {seller_id}")
        return seller_view(seller)
