"""Everything a sale's transition, its emails and its page need, read in one statement.

The hot paths (an order, a click on an email link) read the sale with its seller, order, buyer
and payment in one round trip and then write with plain statements; nothing is read twice.
Each part is a ``Record``: the row's columns as attributes, as templates and the domain read
them from model objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import LABEL_STYLE_TABLENAME_PLUS_COL, bindparam, select
from sqlmodel import Session

from mailflow.store import direct
from mailflow.store.direct import Direct
from mailflow.store.models import Buyer, Order, Payment, Sale, Seller


class Record(SimpleNamespace):
    """One row's columns as attributes."""


_sales, _sellers, _orders = Sale.__table__, Seller.__table__, Order.__table__
_buyers, _payments = Buyer.__table__, Payment.__table__
# What the emails and pages use of the order and buyer; all of the others.
_PARTS = (
    list(_sales.c),
    list(_sellers.c),
    [_orders.c.id, _orders.c.external_id, _orders.c.buyer_id],
    [_buyers.c.id, _buyers.c.name, _buyers.c.email, _buyers.c.locale],
    list(_payments.c),
)
_NAMES = [tuple(c.name for c in columns) for columns in _PARTS]

_BY_SALE = (
    select(*(c for columns in _PARTS for c in columns))
    .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
    .select_from(
        _sales.join(_orders, _orders.c.id == _sales.c.order_id)
        .join(_buyers, _buyers.c.id == _orders.c.buyer_id)
        .join(_sellers, _sellers.c.id == _sales.c.seller_id)
        .outerjoin(_payments, _payments.c.sale_id == _sales.c.id)
    )
    .where(_sales.c.id == bindparam("sale_id"))
)
_SELLER = select(_sellers).where(_sellers.c.id == bindparam("seller_id"))
_SELLERS = select(_sellers).where(_sellers.c.id.in_(bindparam("b_ids", expanding=True)))


@dataclass(slots=True)
class SaleFacts:
    sale: Record
    seller: Record
    order: Record
    buyer: Record
    payment: Record | None


def load(session: Session, sale_id: int) -> SaleFacts | None:
    row = direct.connection(session).execute(_BY_SALE, {"sale_id": sale_id}).first()
    if row is None:
        return None
    parts: list[Record | None] = []
    start = 0
    for names in _NAMES:
        values = row[start : start + len(names)]
        start += len(names)
        parts.append(Record(**dict(zip(names, values, strict=True))))
    sale, seller, order, buyer, payment = parts
    assert sale is not None and seller is not None and order is not None and buyer is not None
    if payment is not None and payment.sale_id is None:
        payment = None
    return SaleFacts(sale, seller, order, buyer, payment)


def seller(session: Session, seller_id: int) -> Record | None:
    row = direct.connection(session).execute(_SELLER, {"seller_id": seller_id}).first()
    return None if row is None else record(row)


def sellers(conn: Direct, seller_ids: list[int]) -> dict[int, Record]:
    """Sellers by id, in one statement; an ``IN`` list (which ``store.direct`` leaves to
    SQLAlchemy) only for several."""
    if len(seller_ids) == 1:
        rows = conn.execute(_SELLER, {"seller_id": seller_ids[0]})
    else:
        rows = conn.execute(_SELLERS, {"b_ids": seller_ids})
    return {row.id: record(row) for row in rows}


def record(row: Any) -> Record:
    return Record(**row._asdict())
