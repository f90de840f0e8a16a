"""Who may sign in, in the database: console users and sellers' one-time login links."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from mailflow.store.database import Transaction
from mailflow.store.models import AdminUser, LoginLink, Seller
from mailflow.store.records import SellerRecord

_sellers = Seller.__table__


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    email: str
    role: str
    password_hash: str


_USER_COLUMNS = (AdminUser.id, AdminUser.email, AdminUser.role, AdminUser.password_hash)


def user_by_email(tx: Transaction, email: str) -> UserRecord | None:
    row = tx.execute(select(*_USER_COLUMNS).where(AdminUser.email == email)).first()
    return None if row is None else UserRecord(*row)


def user(tx: Transaction, user_id: int) -> UserRecord | None:
    row = tx.execute(select(*_USER_COLUMNS).where(AdminUser.id == user_id)).first()
    return None if row is None else UserRecord(*row)


def add_user(
    tx: Transaction, email: str, role: str, password_hash: str, at: datetime
) -> UserRecord:
    made = AdminUser(email=email, role=role, password_hash=password_hash, created_at=at)
    tx.add(made)
    tx.flush()
    assert made.id is not None
    return UserRecord(made.id, email, role, password_hash)


def sellers_by_email(tx: Transaction, address: str) -> list[SellerRecord]:
    """Sellers whose address is ``address`` (case-folded) whatever its case."""
    rows = tx.execute(select(_sellers).where(func.lower(_sellers.c.email) == address))
    return [SellerRecord(*row) for row in rows]


def add_link(
    tx: Transaction, nonce: str, seller_id: int, at: datetime, expires_at: datetime
) -> None:
    tx.add(LoginLink(nonce=nonce, seller_id=seller_id, created_at=at, expires_at=expires_at))


def use_link(tx: Transaction, nonce: str, seller_id: int, now: datetime) -> bool:
    """Spend the link (compare-and-set on ``used_at``): whether it was unused and unexpired."""
    used = tx.execute(
        update(LoginLink)
        .where(
            LoginLink.nonce == nonce,
            LoginLink.seller_id == seller_id,
            LoginLink.used_at.is_(None),
            LoginLink.expires_at > now,
        )
        .values(used_at=now)
    ).rowcount
    return bool(used)
