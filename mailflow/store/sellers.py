"""Seller profiles: creation and look-up. Tiers and suspensions are written elsewhere (by the
policy's store); they are read here as part of the profile."""

from __future__ import annotations

from datetime import datetime

from mailflow.store import models
from mailflow.store.database import Database
from mailflow.store.records import SellerRecord

SellerProfile = SellerRecord
"""A seller as the API and the portal show one: the seller's row."""


def _profile(row: models.Seller) -> SellerProfile:
    assert row.id is not None
    return SellerRecord(
        row.id,
        row.name,
        row.email,
        row.locale,
        row.created_at,
        row.suspended_until,
        row.tier,
        row.tier_since,
        row.tier_version,
    )


class Sellers:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, name: str, email: str, locale: str, created_at: datetime) -> SellerProfile:
        with self._db.transaction() as session:
            row = models.Seller(name=name, email=email, locale=locale, created_at=created_at)
            session.add(row)
            session.flush()
            return _profile(row)

    def get(self, seller_id: int) -> SellerProfile | None:
        with self._db.read() as session:
            row = session.get(models.Seller, seller_id)
            return None if row is None else _profile(row)
