"""Listings, known by ``(seller_id, sku)``: read one, restock or take it off sale."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from mailflow.store import models
from mailflow.store.database import Database


@dataclass(frozen=True)
class Listing:
    seller_id: int
    sku: str
    title: str
    stock: int | None
    active: bool
    updated_at: datetime


@dataclass(frozen=True)
class Restock:
    """What an update changes; ``None`` leaves a field as it is (``stock`` may be set to
    "unlimited", which is also ``None``, hence ``set_stock``)."""

    set_stock: bool = False
    stock: int | None = None
    active: bool | None = None


def _listing(row: models.Listing) -> Listing:
    return Listing(row.seller_id, row.sku, row.title, row.stock, row.active, row.updated_at)


def _find(session: Session, seller_id: int, sku: str) -> models.Listing | None:
    return session.execute(
        select(models.Listing).where(
            col(models.Listing.seller_id) == seller_id, col(models.Listing.sku) == sku
        )
    ).scalar()


class Listings:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, seller_id: int, sku: str) -> Listing | None:
        with self._db.read() as session:
            row = _find(session, seller_id, sku)
            return None if row is None else _listing(row)

    def update(self, seller_id: int, sku: str, change: Restock, at: datetime) -> Listing | None:
        """The listing as the change left it (``updated_at`` becomes ``at``); None if there
        is no such listing."""
        with self._db.transaction() as session:
            row = _find(session, seller_id, sku)
            if row is None:
                return None
            if change.set_stock:
                row.stock = change.stock
            if change.active is not None:
                row.active = change.active
            row.updated_at = at
            session.add(row)
            session.flush()
            return _listing(row)
