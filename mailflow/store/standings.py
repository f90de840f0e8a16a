"""Sellers' standings in the database: the counts behind the cancellation rate, the tier a
seller is in, and its compare-and-set.

The rule itself is ``domain.policy``; ``services.policy`` applies it. A tier change is
written with a compare-and-set on ``tier_version``, so of two processes evaluating the same
seller at once exactly one wins.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update

from mailflow.domain.policy import Counts, Standing, Tier
from mailflow.domain.sales import SaleStatus
from mailflow.store import _direct as direct
from mailflow.store.database import Transaction
from mailflow.store.models import Sale, Seller
from mailflow.store.records import SellerRecord
from mailflow.store.sales import seller

__all__ = [
    "CountedSale",
    "SellerTier",
    "counted_sales",
    "counts",
    "counts_all",
    "counts_of_candidates",
    "out_of_ok",
    "seller",
    "set_standing",
    "tiers",
]

_sellers = Seller.__table__
REFUSED = (SaleStatus.REFUSED.value, SaleStatus.EXPIRED.value)


@dataclass(frozen=True, slots=True)
class SellerTier:
    """A seller's name and tier, as the sellers' list shows them."""

    id: int
    name: str
    tier: str
    suspended_until: datetime | None


@dataclass(frozen=True, slots=True)
class CountedSale:
    """A sale that counts against the seller's rate."""

    id: int
    order_id: int
    title: str
    status: str
    reason: str | None
    created_at: datetime


def _count_columns() -> list[Any]:
    return [
        func.count(),
        func.count().filter(Sale.status == SaleStatus.CANCELLED.value),
        # OR rather than IN: an IN list is an expanding parameter, which store._direct
        # leaves to SQLAlchemy
        func.count().filter(or_(*(Sale.status == status for status in REFUSED))),
        func.count().filter(Sale.status == SaleStatus.WITHDRAWN.value),
    ]


_COUNTS_OF_SELLER = select(*_count_columns()).where(
    Sale.seller_id == bindparam("b_seller"), Sale.created_at >= bindparam("b_since")
)
_SET_TIER = (
    update(_sellers)
    .where(_sellers.c.id == bindparam("b_id"), _sellers.c.tier_version == bindparam("b_version"))
    .values(
        {
            name: bindparam(name)
            for name in ("tier", "tier_since", "suspended_until", "tier_version")
        }
    )
)


def counts(tx: Transaction, seller_id: int, since: datetime) -> Counts:
    """The seller's sales created since ``since``, by what they are now."""
    row = (
        direct.connection(tx)
        .execute(_COUNTS_OF_SELLER, {"b_seller": seller_id, "b_since": since})
        .one()
    )
    return Counts(*row)


def counts_all(tx: Transaction, since: datetime) -> dict[int, Counts]:
    """Every seller's counts (those with a sale since ``since``), in one grouped query."""
    rows = tx.execute(
        select(Sale.seller_id, *_count_columns())
        .where(Sale.created_at >= since)
        .group_by(Sale.seller_id)
    ).all()
    return {row[0]: Counts(*row[1:]) for row in rows}


def counts_of_candidates(
    tx: Transaction, since: datetime, slid_from: datetime
) -> dict[int, Counts]:
    """Counts of the sellers a sweep must look at: those out of ``ok`` and those whose window
    lost sales since ``slid_from`` (the rate of anyone else only moves through events)."""
    slid = select(Sale.seller_id).where(Sale.created_at >= slid_from, Sale.created_at < since)
    out_of = select(Seller.id).where(Seller.tier != Tier.OK.value)
    rows = tx.execute(
        select(Sale.seller_id, *_count_columns())
        .where(Sale.created_at >= since, Sale.seller_id.in_(slid.union(out_of)))
        .group_by(Sale.seller_id)
    ).all()
    return {row[0]: Counts(*row[1:]) for row in rows}


def out_of_ok(tx: Transaction) -> dict[int, Standing]:
    """The stored standing of every seller whose tier is not ``ok``."""
    rows = tx.execute(
        select(Seller.id, Seller.tier, Seller.tier_since, Seller.suspended_until).where(
            Seller.tier != Tier.OK.value
        )
    )
    return {row.id: Standing(Tier(row.tier), row.tier_since, row.suspended_until) for row in rows}


def set_standing(tx: Transaction, found: SellerRecord, standing: Standing) -> SellerRecord | None:
    """Write ``standing`` unless the seller's tier changed since ``found`` was read
    (compare-and-set on ``tier_version``): the seller as written, or None if it lost."""
    values = {
        "tier": standing.tier.value,
        "tier_since": standing.since,
        "suspended_until": standing.suspended_until,
        "tier_version": found.tier_version + 1,
    }
    won = (
        direct.connection(tx)
        .execute(_SET_TIER, {**values, "b_id": found.id, "b_version": found.tier_version})
        .rowcount
    )
    if not won:
        return None
    return replace(
        found,
        tier=standing.tier.value,
        tier_since=standing.since,
        suspended_until=standing.suspended_until,
        tier_version=found.tier_version + 1,
    )


def tiers(tx: Transaction) -> list[SellerTier]:
    rows = tx.execute(select(Seller.id, Seller.name, Seller.tier, Seller.suspended_until))
    return [SellerTier(*row) for row in rows]


def counted_sales(
    tx: Transaction, seller_id: int, since: datetime, statuses: list[str]
) -> list[CountedSale]:
    """The seller's sales since ``since`` in ``statuses``, newest first."""
    rows = tx.execute(
        select(Sale.id, Sale.order_id, Sale.title, Sale.status, Sale.reason, Sale.created_at)
        .where(
            Sale.seller_id == seller_id,
            Sale.created_at >= since,
            Sale.status.in_(statuses),
        )
        .order_by(Sale.created_at.desc())
    )
    return [CountedSale(*row) for row in rows]
