"""Faults for the chaos tests: a slow relay that can drop connections or answer 421, and a
database that drops every connection (PostgreSQL) or fails every statement for a moment
(SQLite, which has no server to drop anything: its driver raises the error a failing disk
gives)."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from typing import Any

from sqlalchemy import Engine, create_engine, event, text

from mailflow.bootstrap import System
from tests.conftest import PG_ADMIN_URL


@dataclass
class ChaosRelay:
    """An SMTP relay taking ``delay`` seconds per message. While ``failing`` is set it drops
    every other connection at DATA and answers the others ``421``. Every accepted message is
    kept by Message-ID with the time it came (a message accepted twice counts twice)."""

    delay: float = 0.05
    failing: bool = False
    arrivals: list[tuple[float, str]] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        if self.failing:
            with self.lock:
                self.refused += 1
                drop = self.refused % 2 == 1
            if drop:
                server.transport.close()
                return "421 closing"
            return "421 4.3.2 Service shutting down, try again later"
        raw = envelope.original_content or b""
        message_id = str(BytesHeaderParser().parsebytes(raw).get("Message-ID") or "")
        with self.lock:
            self.arrivals.append((time.monotonic(), message_id.strip()))
        return "250 OK"

    def received(self) -> Counter[str]:
        with self.lock:
            return Counter(message_id for _, message_id in self.arrivals)

    def longest_gap(self, since: float) -> float:
        """The longest time without an arrival between ``since`` and the last arrival."""
        with self.lock:
            times = sorted(t for t, _ in self.arrivals)
        points = [since, *(t for t in times if t >= since)]
        return max((b - a for a, b in itertools.pairwise(points)), default=0.0)


def _admin() -> Engine:
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def terminate_backends(database: str) -> int:
    """The server ends every connection to ``database`` (as a restart, a failover or a
    PgBouncer restart would); how many it ended."""
    admin = _admin()
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                ).all()
            )
    finally:
        admin.dispose()


@contextmanager
def database_refused(database: str) -> Iterator[None]:
    """PostgreSQL ends every connection to ``database`` and refuses new ones while in the
    block (the database is gone for this process)."""
    admin = _admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
        terminate_backends(database)
        try:
            yield
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
    finally:
        admin.dispose()


@contextmanager
def failing_statements(*engines: Engine) -> Iterator[None]:
    """Every statement on ``engines`` fails with SQLite's disk I/O error while in the block."""

    def fail(*_args: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    for engine in engines:
        event.listen(engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", fail)


@contextmanager
def background_tasks(system: System) -> Iterator[None]:
    """What ``mailflow worker`` runs (delivery, sweeper, wake-up, all supervised), on an event
    loop of its own thread, until the end of the block; then a clean stop."""
    from mailflow import runner

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()

    async def main() -> None:
        ready.set()
        await runner.run_tasks(system, stop)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        assert not thread.is_alive(), "the tasks did not stop"
        loop.close()
