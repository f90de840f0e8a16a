"""The engine and transactions, the same on SQLite and PostgreSQL.

SQLite runs in WAL mode with a busy timeout, and every transaction starts with
``BEGIN IMMEDIATE`` so that concurrent writers queue for the lock instead of failing on an
upgrade from a read lock. PostgreSQL runs at READ COMMITTED; the services rely on
compare-and-set updates, not on isolation, for exactly-one-winner transitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 30_000
OUTBOX_CHANNEL = "mailflow_outbox"


def make_engine(url: str, *, immediate: bool = True, **kwargs: Any) -> Engine:
    """An engine for ``url``; on SQLite, ``immediate=False`` makes one for reads only,
    whose transactions never take the write lock (WAL readers do not wait for writers)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, immediate=immediate, **kwargs)
    # At most 15 connections a process: several `serve` and `worker` processes share one
    # server, whose default max_connections is 100. Requests beyond that wait for a free one.
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_timeout", 30)
    # No ping before each checkout (a round trip per transaction): a connection the server
    # dropped fails its statement, which answers 503, and SQLAlchemy then discards the pool.
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str, *, immediate: bool, **kwargs: Any) -> Engine:
    kwargs.setdefault("connect_args", {})
    kwargs["connect_args"].setdefault("check_same_thread", False)
    kwargs["connect_args"].setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The engine plus the hooks that run after a transaction that queued mail commits."""

    def __init__(self, engine: Engine, read_engine: Engine | None = None) -> None:
        self.engine = engine
        self.read_engine = read_engine or engine
        self._mail_hooks: list[Callable[[], None]] = []

    @classmethod
    def from_url(cls, url: str) -> Database:
        engine = make_engine(url)
        if engine.dialect.name == "sqlite":
            return cls(engine, make_engine(url, immediate=False))
        return cls(engine)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def on_mail_queued(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` after every commit that wrote outbox rows (wakes this process's
        worker)."""
        self._mail_hooks.append(hook)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits once at the end, rolls back on any error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                # On PostgreSQL the outbox's trigger (migration 0007) NOTIFYs the workers of
                # other processes; the commit delivers it.
                session.commit()
            except BaseException:
                session.rollback()
                raise
            if session.info.pop("mail_queued", False):
                for hook in self._mail_hooks:
                    hook()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; safe to open while a write transaction is in progress."""
        with Session(self.read_engine, expire_on_commit=False) as session:
            yield session

    def listen_dsn(self) -> str | None:
        """A libpq connection string for LISTEN (PostgreSQL only)."""
        if self.is_sqlite:
            return None
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
