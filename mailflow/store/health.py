"""Whether the database answers, and which of its errors mean that it does not."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from mailflow.store.database import Transaction

UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, PoolTimeout)
"""The database is out of reach (a dropped connection, a server down) or out of connections
(the pool's timeout): nothing was done, and the same request can be tried again."""


def ping(tx: Transaction) -> None:
    """One round trip; raises one of ``UNAVAILABLE`` when the database does not answer."""
    tx.execute(text("SELECT 1"))
