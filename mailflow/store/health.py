"""Whether the database answers, and which of its errors mean that it does not."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from mailflow.store.database import Database

UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, PoolTimeout)
"""The database is out of reach (a dropped connection, a server down) or out of connections
(the pool's timeout): nothing was done, and the same request can be tried again."""


def ping(db: Database) -> None:
    """One round trip; raises one of ``UNAVAILABLE`` when the database does not answer."""
    with db.read() as session:
        session.execute(text("SELECT 1"))
