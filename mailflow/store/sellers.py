"""Seller profiles: creation and look-up. Tiers and suspensions are written elsewhere (by the
policy's store); they are read here as part of the profile."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

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


class DuplicateSeller(Exception):
    """A seller with this address (whatever its case) exists already."""


class Sellers:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, name: str, email: str, locale: str, created_at: datetime) -> SellerProfile:
        """The new seller; raises DuplicateSeller when the address is taken."""
        try:
            with self._db.transaction() as session:
                row = models.Seller(name=name, email=email, locale=locale, created_at=created_at)
                session.add(row)
                session.flush()
                return _profile(row)
        except IntegrityError as exc:
            raise DuplicateSeller(email) from exc

    def by_email(self, email: str) -> SellerProfile | None:
        """The seller with this address, whatever its case."""
        with self._db.read() as session:
            row = session.execute(
                select(models.Seller).where(func.lower(models.Seller.email) == email.lower())
            ).scalar_one_or_none()
            return None if row is None else _profile(row)

    def get(self, seller_id: int) -> SellerProfile | None:
        with self._db.read() as session:
            row = session.get(models.Seller, seller_id)
            return None if row is None else _profile(row)
