"""Whether the database answers, and which of its errors mean that it does not."""

from __future__ import annotations

from functools import lru_cache

from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from mailflow.store import migrate
from mailflow.store.database import Transaction

UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, PoolTimeout)
"""The database is out of reach (a dropped connection, a server down) or out of connections
(the pool's timeout): nothing was done, and the same request can be tried again."""


def ping(tx: Transaction) -> None:
    """One round trip; raises one of ``UNAVAILABLE`` when the database does not answer."""
    tx.execute(text("SELECT 1"))


@lru_cache(maxsize=1)
def _head() -> str | None:
    return migrate.head_revision()  # reads the migration scripts: once a process


def schema_behind(tx: Transaction) -> str | None:
    """``None`` when the database's schema is this code's; else where it is and should be.
    Raises one of ``UNAVAILABLE`` when the database does not answer."""
    current = MigrationContext.configure(tx.connection()).get_current_revision()
    head = _head()
    if current == head:
        return None
    return f"at revision {current or 'none'}, this code needs {head} (run `mailflow db upgrade`)"
