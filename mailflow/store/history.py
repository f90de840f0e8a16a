"""Sales as the seller portal and the admin console list them: searches, and the status
history a seller's rate over time is computed from (one sale with its parties is
``store.sales.facts``).

Every write to a sale goes through the sales service; nothing here changes one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel import col

from mailflow.store.database import Database
from mailflow.store.messages import Slice
from mailflow.store.models import Order, Sale, SaleEvent, Seller


@dataclass(frozen=True)
class ConsoleSale:
    """A line of the console's sales search."""

    id: int
    title: str
    status: str
    amount_cents: int
    currency: str
    created_at: datetime
    seller_id: int
    seller_name: str
    order_external_id: str


@dataclass(frozen=True)
class SellerSale:
    """A line of a seller's own sales list."""

    id: int
    title: str
    sku: str
    quantity: int
    amount_cents: int
    currency: str
    status: str
    created_at: datetime
    external_id: str


@dataclass(frozen=True)
class SellerSaleFilter:
    """A seller's sales in ``status`` (any if None) whose title, SKU or order's external id
    contains ``text`` (any if empty), or whose number is ``number``."""

    seller_id: int
    status: str | None = None
    text: str = ""
    number: int | None = None


@dataclass(frozen=True)
class SaleStart:
    id: int
    created_at: datetime


@dataclass(frozen=True)
class StatusChange:
    sale_id: int
    at: datetime
    to_status: str


@dataclass(frozen=True)
class StatusHistory:
    starts: list[SaleStart]
    changes: list[StatusChange]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _seller_conditions(where: SellerSaleFilter) -> list[Any]:
    conditions: list[Any] = [col(Sale.seller_id) == where.seller_id]
    if where.status:
        conditions.append(col(Sale.status) == where.status)
    if where.text:
        pattern = _like(where.text)
        matches: list[Any] = [
            col(Sale.title).ilike(pattern, escape="\\"),
            col(Sale.sku).ilike(pattern, escape="\\"),
            col(Order.external_id).ilike(pattern, escape="\\"),
        ]
        if where.number is not None:
            matches.append(col(Sale.id) == where.number)
        conditions.append(or_(*matches))
    return conditions


class History:
    def __init__(self, db: Database) -> None:
        self._db = db

    def search(
        self,
        text: str,
        number: int | None,
        *,
        status: str | None,
        seller_id: int | None,
        rows: Slice,
    ) -> list[ConsoleSale]:
        """Sales, newest first, whose number is ``number``, whose order's external id begins
        with ``text``, or whose title, seller's name or email contains it (any if empty)."""
        statement = (
            select(
                col(Sale.id),
                col(Sale.title),
                col(Sale.status),
                col(Sale.amount_cents),
                col(Sale.currency),
                col(Sale.created_at),
                col(Sale.seller_id),
                col(Seller.name),
                col(Order.external_id),
            )
            .join(Seller, col(Seller.id) == col(Sale.seller_id))
            .join(Order, col(Order.id) == col(Sale.order_id))
        )
        if text:
            matches = [
                col(Order.external_id).istartswith(text, autoescape=True),
                col(Sale.title).icontains(text, autoescape=True),
                col(Seller.name).icontains(text, autoescape=True),
                col(Seller.email).icontains(text, autoescape=True),
            ]
            if number is not None:
                matches.insert(0, col(Sale.id) == number)
            statement = statement.where(or_(*matches))
        if status:
            statement = statement.where(col(Sale.status) == status)
        if seller_id is not None:
            statement = statement.where(col(Sale.seller_id) == seller_id)
        statement = statement.order_by(col(Sale.id).desc()).offset(rows.offset).limit(rows.limit)
        with self._db.read() as session:
            return [ConsoleSale(*row) for row in session.execute(statement)]

    def count_seller_sales(self, where: SellerSaleFilter) -> int:
        with self._db.read() as session:
            total: int = session.execute(
                select(func.count())
                .select_from(Sale)
                .join(Order, col(Order.id) == col(Sale.order_id))
                .where(*_seller_conditions(where))
            ).scalar_one()
        return total

    def seller_sales(self, where: SellerSaleFilter, rows: Slice) -> list[SellerSale]:
        """The seller's sales, newest first."""
        statement = (
            select(
                col(Sale.id),
                col(Sale.title),
                col(Sale.sku),
                col(Sale.quantity),
                col(Sale.amount_cents),
                col(Sale.currency),
                col(Sale.status),
                col(Sale.created_at),
                col(Order.external_id),
            )
            .join(Order, col(Order.id) == col(Sale.order_id))
            .where(*_seller_conditions(where))
            .order_by(col(Sale.created_at).desc(), col(Sale.id).desc())
            .limit(rows.limit)
            .offset(rows.offset)
        )
        with self._db.read() as session:
            return [SellerSale(*row) for row in session.execute(statement)]

    def seller_of(self, sale_id: int) -> int | None:
        """The seller of the sale, or None when there is no such sale."""
        with self._db.read() as session:
            seller_id: int | None = session.execute(
                select(col(Sale.seller_id)).where(col(Sale.id) == sale_id)
            ).scalar()
        return seller_id

    def status_history(self, seller_id: int, since: datetime) -> StatusHistory:
        """The seller's sales created at ``since`` or later, oldest first, with every status
        change of each (by sale, then in order), read together."""
        starts = (
            select(col(Sale.id), col(Sale.created_at))
            .where(col(Sale.seller_id) == seller_id, col(Sale.created_at) >= since)
            .order_by(col(Sale.created_at), col(Sale.id))
        )
        changes = (
            select(col(SaleEvent.sale_id), col(SaleEvent.at), col(SaleEvent.to_status))
            .join(Sale, col(Sale.id) == col(SaleEvent.sale_id))
            .where(col(Sale.seller_id) == seller_id, col(Sale.created_at) >= since)
            .order_by(col(SaleEvent.sale_id), col(SaleEvent.at), col(SaleEvent.id))
        )
        with self._db.read() as session:
            return StatusHistory(
                [SaleStart(*row) for row in session.execute(starts)],
                [StatusChange(*row) for row in session.execute(changes)],
            )
