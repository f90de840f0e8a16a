"""Who may sign in, in the database: console users, sellers' one-time login links, and the
signed-in browsers (web sessions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlmodel import col

from mailflow.store.database import Transaction
from mailflow.store.models import AdminUser, LoginLink, Seller, WebSession, table
from mailflow.store.records import SellerRecord

_sellers = table(Seller)


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    email: str
    role: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """A seller's one-time login link, known by its nonce."""

    seller_id: int
    expires_at: datetime
    used_at: datetime | None


_USER_COLUMNS = (
    col(AdminUser.id),
    col(AdminUser.email),
    col(AdminUser.role),
    col(AdminUser.password_hash),
)


def user_by_email(tx: Transaction, email: str) -> UserRecord | None:
    row = tx.execute(select(*_USER_COLUMNS).where(col(AdminUser.email) == email)).first()
    return None if row is None else UserRecord(*row)


def set_password(tx: Transaction, user_id: int, password_hash: str) -> None:
    tx.execute(
        update(AdminUser).where(col(AdminUser.id) == user_id).values(password_hash=password_hash)
    )


def user(tx: Transaction, user_id: int) -> UserRecord | None:
    row = tx.execute(select(*_USER_COLUMNS).where(col(AdminUser.id) == user_id)).first()
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
    used = (
        tx.connection()
        .execute(
            update(LoginLink)
            .where(
                col(LoginLink.nonce) == nonce,
                col(LoginLink.seller_id) == seller_id,
                col(LoginLink.used_at).is_(None),
                col(LoginLink.expires_at) > now,
            )
            .values(used_at=now)
        )
        .rowcount
    )
    return bool(used)


def link(tx: Transaction, nonce: str) -> LinkRecord | None:
    row = tx.get(LoginLink, nonce)
    return None if row is None else LinkRecord(row.seller_id, row.expires_at, row.used_at)


def add_session(
    tx: Transaction, digest: str, kind: str, subject_id: int, at: datetime, expires_at: datetime
) -> None:
    """A signed-in browser; the sessions of everyone that have expired go at the same time."""
    tx.execute(delete(WebSession).where(col(WebSession.expires_at) <= at))
    tx.add(
        WebSession(
            digest=digest, kind=kind, subject_id=subject_id, created_at=at, expires_at=expires_at
        )
    )


def session_subject(tx: Transaction, digest: str, kind: str, now: datetime) -> int | None:
    """Who the session is for, while it lasts."""
    return tx.execute(
        select(col(WebSession.subject_id)).where(
            col(WebSession.digest) == digest,
            col(WebSession.kind) == kind,
            col(WebSession.expires_at) > now,
        )
    ).scalar_one_or_none()


def end_session(tx: Transaction, digest: str) -> None:
    tx.execute(delete(WebSession).where(col(WebSession.digest) == digest))


def end_sessions(tx: Transaction, kind: str, subject_id: int) -> int:
    """Every session of one person: how many there were."""
    ended = tx.connection().execute(
        delete(WebSession).where(
            col(WebSession.kind) == kind, col(WebSession.subject_id) == subject_id
        )
    )
    return int(ended.rowcount)
