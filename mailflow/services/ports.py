"""What the write-side services need from the rest of the system, as interfaces.

``bootstrap`` gives them the real parts: the database's unit of work and the
``store`` modules themselves (a module whose functions match a protocol implements it). The
unit tests give them in-memory fakes (``tests/fakes.py``), so a rule — which email an event
sends, one tier email per entry — runs in microseconds without a database.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from mailflow.domain.policy import Counts, Standing
from mailflow.store.database import Transaction
from mailflow.store.listings import Listing
from mailflow.store.logins import LinkRecord, UserRecord
from mailflow.store.records import SellerRecord


class UnitOfWork(Protocol):
    def transaction(self) -> AbstractContextManager[Transaction]:
        """One transaction: commits once at the end, rolls back on any error."""

    def read(self) -> AbstractContextManager[Transaction]:
        """A transaction for reading only."""


class StandingStore(Protocol):
    """Sellers' standings (``store.standings``)."""

    def seller(self, tx: Transaction, seller_id: int) -> SellerRecord | None: ...

    def counts(self, tx: Transaction, seller_id: int, since: datetime) -> Counts: ...

    def set_standing(
        self, tx: Transaction, found: SellerRecord, standing: Standing
    ) -> SellerRecord | None: ...


class LoginStore(Protocol):
    """Console users and sellers' login links (``store.logins``)."""

    def user_by_email(self, tx: Transaction, email: str) -> UserRecord | None: ...

    def user(self, tx: Transaction, user_id: int) -> UserRecord | None: ...

    def add_user(
        self, tx: Transaction, email: str, role: str, password_hash: str, at: datetime
    ) -> UserRecord: ...

    def sellers_by_email(self, tx: Transaction, address: str) -> list[SellerRecord]: ...

    def add_link(
        self, tx: Transaction, nonce: str, seller_id: int, at: datetime, expires_at: datetime
    ) -> None: ...

    def use_link(self, tx: Transaction, nonce: str, seller_id: int, now: datetime) -> bool: ...

    def link(self, tx: Transaction, nonce: str) -> LinkRecord | None: ...

    def set_password(self, tx: Transaction, user_id: int, password_hash: str) -> None: ...

    def add_session(
        self,
        tx: Transaction,
        digest: str,
        kind: str,
        subject_id: int,
        at: datetime,
        expires_at: datetime,
    ) -> None: ...

    def session_subject(
        self, tx: Transaction, digest: str, kind: str, now: datetime
    ) -> int | None: ...

    def end_session(self, tx: Transaction, digest: str) -> None: ...

    def end_sessions(self, tx: Transaction, kind: str, subject_id: int) -> int: ...


class WebhookEventStore(Protocol):
    """Where the webhook handlers write events and deliveries (``store.webhooks``)."""

    def subscribers(self, tx: Transaction) -> list[tuple[int, list[str]]]: ...

    def next_sequence(self, tx: Transaction, subject: str) -> int: ...

    def add_event(
        self,
        tx: Transaction,
        *,
        event_id: str,
        type_: str,
        subject: str,
        sequence: int,
        body: bytes,
        at: datetime,
        endpoint_ids: Iterable[int],
    ) -> int: ...

    def listing(self, tx: Transaction, listing_id: int) -> Listing | None: ...
