"""Chaos: while orders flow and a slow relay drains the outbox, the database drops every
connection twice (PostgreSQL: ``pg_terminate_backend`` from another connection; SQLite: every
statement fails for a moment), or the relay drops connections and answers ``421``.

Every email must reach the relay (by Message-ID; a second copy is allowed and counted) with
no restart of anything, within ``BOUND_SECONDS`` of the last fault; the API answers ``503``
at worst, never ``500``, and takes orders again within ``BACK_WITHIN_SECONDS``. The same with
``mailflow worker`` as its own process, and with two of them (PostgreSQL). Each run prints
its figures (``-s`` shows them): emails queued, delivered, duplicates on the wire, the
longest time without a delivery, the time to drain after the last fault, the API's 503s and
the restarts of each task with their causes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import make_url

from mailflow.bootstrap import System, build
from mailflow.config import load
from mailflow.store.database import Database
from mailflow.store.models import OutboxMessage
from mailflow.web.app import create_app
from tests import factories
from tests.chaos import ChaosRelay, background_tasks, failing_statements, terminate_backends
from tests.conftest import API_TOKEN, SECRET, make_settings
from tests.support import live_server, smtp_relay, wait_for

ORDERS = 30
"""One email to the seller each."""
RELAY_DELAY = 0.05
BOUND_SECONDS = 20.0
"""Every email reaches the relay within this long after the last fault."""
BACK_WITHIN_SECONDS = 5.0
"""The API places an order again within this long after a fault."""
SQLITE_FAULT_SECONDS = 0.3
RELAY_FAULT_SECONDS = 1.0
SMTP = {"concurrency": 4, "retry_base_seconds": 0.2, "lease_seconds": 10, "timeout_seconds": 5}

MAILFLOW = str(Path(sys.executable).parent / "mailflow")


@dataclass
class OrderFlow:
    """Places ``ORDERS`` orders through the HTTP API, one every 40 ms, repeating one answered
    503 (as a client told to retry would) until it is placed; keeps every answer's status."""

    base: str
    seller_id: int
    answers: list[tuple[float, int]] = field(default_factory=list)
    placed: int = 0
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        with httpx2.Client(base_url=self.base, headers=headers, timeout=30) as client:
            for _ in range(ORDERS):
                body = factories.order_body(self.seller_id)
                while True:
                    status = client.post("/api/v1/orders", json=body).status_code
                    self.answers.append((time.monotonic(), status))
                    if status != 503:
                        break
                    time.sleep(0.1)
                self.placed += 1
                time.sleep(0.04)

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join(60)
        assert not self.thread.is_alive(), "the orders did not all go through"

    def back_after(self, at: float) -> float:
        """How long after ``at`` the API placed an order again."""
        placed = [t for t, status in self.answers if t >= at and status in (200, 201)]
        assert placed, "no order placed after the fault"
        return placed[0] - at


@dataclass
class Figures:
    scenario: str
    queued: int = 0
    delivered: int = 0
    duplicates: int = 0
    longest_gap: float = 0.0
    drained_after: float = 0.0
    answers_503: int = 0
    back_after: list[float] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)
    causes: list[str] = field(default_factory=list)

    def report(self) -> str:
        back = ", ".join(f"{s:.2f} s" for s in self.back_after) or "-"
        lines = [
            f"chaos [{self.scenario}]: queued {self.queued}, delivered {self.delivered}, "
            f"duplicates on the wire {self.duplicates}, longest delivery gap "
            f"{self.longest_gap:.2f} s, drained {self.drained_after:.2f} s after the last "
            f"fault (bound {BOUND_SECONDS:.0f} s), API 503s {self.answers_503}, "
            f"orders again after {back}, restarts {self.restarts or 'none'}",
            *(f"  restart cause: {cause}" for cause in self.causes),
        ]
        return "\n".join(lines)


def _outbox(db: Database) -> list[OutboxMessage]:
    with db.read() as session:
        return list(session.execute(select(OutboxMessage)).scalars())


def _drained(db: Database, relay: ChaosRelay, expected: int) -> bool:
    try:
        rows = _outbox(db)
    except Exception:  # the database may still be away for this reader
        return False
    received = relay.received()
    return (
        len(rows) == expected
        and all(row.status == "sent" for row in rows)
        and all(received[row.message_id] >= 1 for row in rows)
    )


def _check(figures: Figures, flow: OrderFlow, db: Database, relay: ChaosRelay) -> None:
    rows = _outbox(db)
    received = relay.received()
    ids = {row.message_id for row in rows}
    figures.queued = len(rows)
    figures.delivered = len(ids & set(received))
    figures.duplicates = sum(n - 1 for n in received.values())
    statuses = Counter(status for _, status in flow.answers)
    figures.answers_503 = statuses[503]
    print("\n" + figures.report())
    assert figures.queued == ORDERS
    assert figures.delivered == ORDERS
    assert set(received) == ids, "the relay got a message no row queued"
    assert set(statuses) <= {200, 201, 503}, statuses
    assert figures.drained_after <= BOUND_SECONDS
    assert all(back <= BACK_WITHIN_SECONDS for back in figures.back_after), figures.back_after


def _restarts_with_causes(
    figures: Figures, system: System, caplog: pytest.LogCaptureFixture
) -> None:
    """Every restart is in the log at once, with its traceback."""
    failures = [
        r
        for r in caplog.records
        if r.name == "mailflow.supervisor" and " failed, restarting" in r.getMessage()
    ]
    figures.causes = [
        f"{r.getMessage().split(',')[0]}: {str(r.exc_info[1]).splitlines()[0]}"[:160]
        for r in failures
        if r.exc_info and r.exc_info[1] is not None
    ]
    figures.restarts = {s.name: s.restarts for s in system.supervisor.states() if s.restarts}
    for name, count in figures.restarts.items():
        logged = [r for r in failures if r.getMessage().startswith(f"task {name} failed")]
        assert len(logged) >= count and all(r.exc_info for r in logged), name
    # A task that failed at the last fault may still wait out its backoff (0.5 s, 1 s, ...).
    wait_for(lambda: all(s.up for s in system.supervisor.states()), timeout=5)


@contextmanager
def _serving(db_url: str, relay_port: int) -> Iterator[tuple[System, str, int]]:
    """``mailflow serve`` in this process, on the real clock: uvicorn, and the supervised
    tasks on their own loop. The system, the API's base URL and a seller's id."""
    settings = make_settings(db_url, relay_port, smtp=SMTP, policy={"sweep_every_seconds": 0.5})
    system = build(settings)
    try:
        with live_server(system) as base, background_tasks(system):
            yield system, base, _seller(base)
    finally:
        system.close()


def _seller(base: str) -> int:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    body = {"name": "Chaos", "email": f"chaos{time.monotonic_ns()}@shop.example", "locale": "en"}
    answer = httpx2.post(f"{base}/api/v1/sellers", json=body, headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def _database_fault(system: System, db_url: str) -> Callable[[], None]:
    if system.db.is_sqlite:

        def blink() -> None:
            with failing_statements(system.db.engine, system.db.read_engine):
                time.sleep(SQLITE_FAULT_SECONDS)

        return blink
    database = make_url(db_url).database or ""
    return lambda: print(f"  terminated {terminate_backends(database)} backends")


def _run_chaos(
    flow: OrderFlow, fault: Callable[[], None], figures: Figures, db: Database, relay: ChaosRelay
) -> None:
    """Start the orders, fault at a third and two thirds of them, wait for the drain."""
    started = time.monotonic()
    flow.start()
    fault_times = []
    for at in (ORDERS // 3, 2 * ORDERS // 3):
        wait_for(lambda at=at: flow.placed >= at, timeout=60)  # type: ignore[misc]
        fault_times.append(time.monotonic())
        fault()
    flow.join()
    wait_for(lambda: _drained(db, relay, ORDERS), timeout=BOUND_SECONDS + 30)
    figures.drained_after = time.monotonic() - fault_times[-1]
    figures.longest_gap = relay.longest_gap(started)
    figures.back_after = [flow.back_after(t) for t in fault_times]


@pytest.mark.postgres
def test_the_database_drops_every_connection_twice_while_orders_flow(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    relay = ChaosRelay(delay=RELAY_DELAY)
    figures = Figures("database, serve, " + db_url.split(":")[0].split("+")[0])
    with smtp_relay(relay) as (_, port), _serving(db_url, port) as (system, base, seller):
        flow = OrderFlow(base, seller)
        _run_chaos(flow, _database_fault(system, db_url), figures, system.db, relay)
        _restarts_with_causes(figures, system, caplog)
        _check(figures, flow, system.db, relay)


@pytest.mark.postgres
def test_the_relay_drops_connections_and_answers_421_while_orders_flow(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    relay = ChaosRelay(delay=RELAY_DELAY)
    figures = Figures("relay, serve, " + db_url.split(":")[0].split("+")[0])

    def relay_fault() -> None:
        relay.failing = True
        threading.Timer(RELAY_FAULT_SECONDS, lambda: setattr(relay, "failing", False)).start()

    with smtp_relay(relay) as (_, port), _serving(db_url, port) as (system, base, seller):
        flow = OrderFlow(base, seller)
        _run_chaos(flow, relay_fault, figures, system.db, relay)
        _restarts_with_causes(figures, system, caplog)
        _check(figures, flow, system.db, relay)
    assert relay.refused > 0


@pytest.mark.parametrize(("outage", "lease"), [(1.0, 10), (2.5, 1)])
def test_a_result_whose_write_failed_is_written_later_not_sent_again(
    sqlite_url: str, caplog: pytest.LogCaptureFixture, outage: float, lease: float
) -> None:
    """The relay accepts, then the database fails the result's write for a while: the
    flusher keeps the results, is restarted, writes them; nothing is sent twice, even when
    the outage outlasts the lease (the worker may claim the row again: it is not resent)."""
    caplog.set_level(logging.INFO)

    class BlinkAfterAccepting(ChaosRelay):
        system: System | None = None
        blinked = False

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            answer = await super().handle_DATA(server, session, envelope)
            if not self.blinked and self.system is not None:
                self.blinked = True
                engines = (self.system.db.engine, self.system.db.read_engine)
                fault = failing_statements(*engines)
                fault.__enter__()
                threading.Timer(outage, lambda: fault.__exit__(None, None, None)).start()
            return answer

    relay = BlinkAfterAccepting(delay=0.2)
    with smtp_relay(relay) as (_, port):
        system = build(make_settings(sqlite_url, port, smtp={**SMTP, "lease_seconds": lease}))
        try:
            with TestClient(create_app(system), base_url="http://mailflow.test") as api:
                api.headers["Authorization"] = f"Bearer {API_TOKEN}"
                seller = factories.seller(api)
                for _ in range(3):
                    factories.order(api, seller["id"])
            relay.system = system
            with background_tasks(system):
                wait_for(lambda: _drained(system.db, relay, 3), timeout=15)
                flusher = next(s for s in system.supervisor.states() if s.name.endswith("flusher"))
            assert relay.blinked
            assert relay.received() == Counter({row.message_id: 1 for row in _outbox(system.db)})
            assert flusher.restarts >= 1 and "disk I/O error" in (flusher.last_error or "")
            if lease > outage:
                assert all(row.attempts == 1 for row in _outbox(system.db))
        finally:
            system.close()


# --- `mailflow worker` as its own process ---------------------------------------------------


def _worker_config(tmp_path: Path, db_url: str, relay_port: int) -> Path:
    path = tmp_path / "worker.toml"
    smtp = "\n".join(f"{k} = {v}" for k, v in SMTP.items())
    path.write_text(
        f"""
[server]
base_url = "http://mailflow.test"
data_dir = "{tmp_path / "data"}"

[database]
url = "{db_url}"

[smtp]
mode = "relay"
host = "127.0.0.1"
port = {relay_port}
support_address = "support@marketplace.example"
{smtp}

[security]
secret_keys = ["{SECRET}"]

[api]
tokens = ["{API_TOKEN}"]
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.postgres
@pytest.mark.parametrize("workers", [1, 2])
def test_worker_processes_ride_out_the_database_dropping_every_connection(
    pg_only_url: str, tmp_path: Path, workers: int
) -> None:
    relay = ChaosRelay(delay=RELAY_DELAY)
    figures = Figures(f"database, {workers} x mailflow worker, postgresql")
    database = make_url(pg_only_url).database or ""
    with smtp_relay(relay) as (_, port), ExitStack() as stack:
        config = _worker_config(tmp_path, pg_only_url, port)
        system = build(load(config).settings)  # the API's, without tasks
        stack.callback(system.close)
        base = stack.enter_context(live_server(system))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
        logs, procs = [], []
        for n in range(workers):
            log = stack.enter_context((tmp_path / f"worker-{n}.log").open("wb"))
            proc = subprocess.Popen(
                [MAILFLOW, "worker", "--config", str(config)], stdout=log, stderr=log, env=env
            )
            stack.callback(lambda p=proc: p.poll() is None and p.kill())  # type: ignore[misc]
            logs.append(tmp_path / f"worker-{n}.log")
            procs.append(proc)
        wait_for(lambda: all("worker delivering" in p.read_text() for p in logs), timeout=30)

        flow = OrderFlow(base, _seller(base))
        _run_chaos(
            flow,
            lambda: print(f"  terminated {terminate_backends(database)} backends"),
            figures,
            system.db,
            relay,
        )
        assert all(p.poll() is None for p in procs), "a worker process ended"
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(15) == 0
        text = "\n".join(p.read_text(errors="replace") for p in logs)
        failed = [line for line in text.splitlines() if " failed, restarting in " in line]
        figures.restarts = dict(Counter(line.split("task ")[1].split(" ")[0] for line in failed))
        figures.causes = [
            line
            for line in text.splitlines()
            if line.startswith(("psycopg.", "sqlalchemy.exc.")) and "Error" in line
        ][:6]
        # Each failure's traceback follows its line at once.
        assert text.count("Traceback (most recent call last)") >= len(failed)
        _check(figures, flow, system.db, relay)
