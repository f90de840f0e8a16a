"""The engine and transactions, the same on SQLite and PostgreSQL.

SQLite runs in WAL mode with a busy timeout, and every transaction starts with
``BEGIN IMMEDIATE`` so that concurrent writers queue for the lock instead of failing on an
upgrade from a read lock. PostgreSQL runs at READ COMMITTED; the services rely on
compare-and-set updates, not on isolation, for exactly-one-winner transitions.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_WRITERS = 4
OUTBOX_CHANNEL = "mailflow_outbox"
WEBHOOKS_CHANNEL = "mailflow_webhooks"

Transaction = Session
"""What a unit of work hands out. Services only pass it on (to ``store`` functions, the outbox,
the payment gateway); the SQL behind it is the store's."""

_AFTER_COMMIT = "mailflow.after_commit"


@dataclass(slots=True)
class AfterCommit:
    """What a transaction asks for once it has committed (nothing after a rollback)."""

    wake_mail: bool = False
    """Outbox rows became due: run the database's ``on_mail_queued`` hooks (the delivery
    worker of this process wakes; other processes hear PostgreSQL's NOTIFY)."""

    wake_webhooks: bool = False
    """Webhook deliveries became due: run the ``on_webhooks_queued`` hooks (this process's
    webhook worker wakes; other processes hear PostgreSQL's NOTIFY, migration 0012)."""


def after_commit(tx: Transaction) -> AfterCommit:
    """The after-commit requests of ``tx``, the one typed place a transaction's writers leave
    them (``mail.outbox`` sets ``wake_mail``); ``Database.transaction`` acts on them."""
    requests = tx.info.get(_AFTER_COMMIT)
    if requests is None:
        requests = tx.info[_AFTER_COMMIT] = AfterCommit()
    return cast(AfterCommit, requests)


def mail_queued(tx: Transaction) -> None:
    """Say that ``tx`` wrote (or made due) outbox rows: wake the worker after the commit."""
    after_commit(tx).wake_mail = True


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


class Turns:
    """A counting semaphore that serves waiters in arrival order.

    ``threading.Semaphore`` lets a thread that has just released take it again at once, so
    under load a waiter can be passed over for seconds; here a release hands the place to
    the longest waiter directly.
    """

    def __init__(self, places: int) -> None:
        self._lock = threading.Lock()
        self._free = places
        self._waiters: deque[threading.Lock] = deque()

    def __enter__(self) -> None:
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            gate = threading.Lock()
            gate.acquire()
            self._waiters.append(gate)
        gate.acquire()  # released by the holder that hands its place over

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._free += 1


class Database:
    """The engine plus the hooks that run after a transaction that queued mail commits."""

    def __init__(
        self, engine: Engine, read_engine: Engine | None = None, writers: int | None = None
    ) -> None:
        """``writers``: how many write transactions of this process run at once (the others
        wait their turn in order, asleep); ``None``, no limit but the pool's."""
        self.engine = engine
        self.read_engine = read_engine or engine
        self._mail_hooks: list[Callable[[], None]] = []
        self._webhook_hooks: list[Callable[[], None]] = []
        self._writers = Turns(writers) if writers else None
        self._depth = threading.local()

    @classmethod
    def from_url(cls, url: str) -> Database:
        engine = make_engine(url)
        if engine.dialect.name == "sqlite":
            # SQLite has one writer at a time: its threads queue on a lock here rather than
            # on the database's busy handler, which polls with sleeps of up to 100 ms.
            return cls(engine, make_engine(url, immediate=False), writers=1)
        # Threads past the pool's steady size would only contend for the GIL and the pool.
        return cls(engine, writers=POSTGRES_WRITERS)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def on_mail_queued(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` after every commit that wrote outbox rows (wakes this process's
        worker)."""
        self._mail_hooks.append(hook)

    def on_webhooks_queued(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` after every commit that queued webhook deliveries."""
        self._webhook_hooks.append(hook)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits once at the end, rolls back on any error."""
        depth = getattr(self._depth, "value", 0)
        if self._writers is None or depth:
            with self._transaction() as session:
                yield session
            return
        with self._writers:
            self._depth.value = 1
            try:
                with self._transaction() as session:
                    yield session
            finally:
                self._depth.value = 0

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                # On PostgreSQL the outbox's trigger (migration 0007) NOTIFYs the workers of
                # other processes; the commit delivers it.
                session.commit()
            except BaseException:
                session.rollback()
                raise
            requests: AfterCommit | None = session.info.pop(_AFTER_COMMIT, None)
            if requests is not None and requests.wake_mail:
                for hook in self._mail_hooks:
                    hook()
            if requests is not None and requests.wake_webhooks:
                for hook in self._webhook_hooks:
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
