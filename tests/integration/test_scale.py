"""Scale-out on PostgreSQL: 2 HTTP processes and 4 delivery workers share one database.

``MAILFLOW_SCALE_ORDERS`` orders (default 10,000, one item each, spread over 200 sellers) are
posted concurrently to ``mailflow serve --workers 2`` while 4 ``mailflow worker`` processes
(and the delivery task of ``serve`` itself) deliver to an SMTP relay running in this process.
Each worker is killed once with SIGKILL while the orders pour in, and started again. Some
sellers accept then cancel sales — each cancel sent twice at once — so that their cancellation
rate moves them between tiers while other processes evaluate them too.

At the end, once the outbox holds nothing queued: every sale has one ``seller_new_sale`` row
and its Message-ID reached the relay (at least once on the wire, deduplicated here; nothing
else arrived), no sale made the same transition twice or sits in a state its events do not
end in, no seller got more tier emails than it had tier changes, and every process stops on
SIGTERM with status 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import Engine, create_engine, text

from tests.conftest import _truncate_pg
from tests.support import free_port, smtp_relay

pytestmark = pytest.mark.postgres

ORDERS = int(os.environ.get("MAILFLOW_SCALE_ORDERS", "10000"))
SELLERS = max(1, min(200, ORDERS // 50))  # about 50 sales each
CANCELLING_SELLERS = max(1, SELLERS // 5)  # these cancel every period-th sale of theirs
PERIODS = (6, 8, 12, 18, 22)  # 16.7 %, 12.5 % (crosses min_sales), 8.3 %, 5.6 %, 4.5 %
CLIENTS = 32
WORKERS = 4
HTTP_PROCESSES = 2
LEASE_SECONDS = 3
MIN_SALES = 10
DELIVERY_TIMEOUT = 240.0

MAILFLOW = str(Path(sys.executable).parent / "mailflow")
SECRET = "scale-test-secret-" + "s" * 32
TOKEN = "scale-test-token-" + "t" * 24
TIER_EMAILS = ("seller_rate_warning", "seller_rate_alert", "seller_suspended")


# -- the relay -------------------------------------------------------------------------------


def _message_id(data: bytes) -> str:
    head = data[: data.find(b"\r\n\r\n")]
    start = head.lower().find(b"\r\nmessage-id:")
    if start < 0:
        return ""
    end = head.find(b"\r\n", start + 2)
    return head[start + 13 : end if end >= 0 else None].strip().decode("ascii", "replace")


class CountingRelay:
    """Accepts every message and counts it by Message-ID (the wire may carry one twice)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()
        self.last_at = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message_id = _message_id(envelope.original_content)
        with self.lock:
            self.received[message_id] += 1
            self.last_at = time.monotonic()
        return "250 OK"

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.received)


@pytest.fixture
def counting_relay() -> Iterator[tuple[CountingRelay, int]]:
    with smtp_relay(CountingRelay()) as running:
        yield running


@pytest.fixture
def scale_db(pg_url: str) -> Iterator[Engine]:
    _truncate_pg(pg_url)
    engine = create_engine(pg_url, pool_size=2)
    try:
        yield engine
    finally:
        engine.dispose()


# -- the processes ---------------------------------------------------------------------------


def _write_config(tmp_path: Path, db_url: str, http_port: int, relay_port: int) -> Path:
    path = tmp_path / "scale.toml"
    path.write_text(
        f"""
[server]
base_url = "http://127.0.0.1:{http_port}"
host = "127.0.0.1"
port = {http_port}
data_dir = "{tmp_path / "data"}"

[database]
url = "{db_url}"

[smtp]
mode = "relay"
host = "127.0.0.1"
port = {relay_port}
concurrency = 8
lease_seconds = {LEASE_SECONDS}
retry_base_seconds = 1
timeout_seconds = 30

[security]
secret_keys = ["{SECRET}"]

[api]
tokens = ["{TOKEN}"]

[policy]
min_sales = {MIN_SALES}
sweep_every_seconds = 2
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Process:
    """One ``mailflow`` child process, its output in a log file of its own."""

    args: tuple[str, ...]
    cwd: Path
    name: str
    runs: int = 0
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
        self.runs += 1
        log_path = self.cwd / f"{self.name}-{self.runs}.log"
        self.logs.append(log_path)
        with log_path.open("wb") as log:
            # A session of its own: the clean-up can end the HTTP children of ``serve`` too.
            self.proc = subprocess.Popen(
                [MAILFLOW, *self.args],
                cwd=self.cwd,
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def kill(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(10)

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def last_log(self) -> str:
        return self.logs[-1].read_text(errors="replace") if self.logs else ""

    def cleanup(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever is left of its group
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


# -- CPU accounting (load-independent figures: the machine may be shared) --------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(session id, user + system CPU seconds) of a process, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return int(fields[3]), (int(fields[11]) + int(fields[12])) / _TICK


class CpuMonitor:
    """Samples the CPU time of every process in the given sessions (a ``serve`` and its HTTP
    children, each worker) and of the PostgreSQL backends of the test database; a process's
    last sample counts, so processes that were killed still count."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: dict[int, str] = {}
        self.seen: dict[int, tuple[str, float]] = {}
        self.peak_ours = 0  # PostgreSQL connections to the test database, at most
        self.peak_all = 0  # and to the whole server (other work may share it)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, process: Process) -> None:
        assert process.proc is not None
        self.sessions[process.proc.pid] = process.name.rstrip("0123456789")

    def _run(self) -> None:
        with self.engine.connect() as conn:
            while not self.stop.wait(0.5):
                self.sample(conn)

    def sample(self, conn: Any) -> None:
        self.sample_processes()
        rows = conn.execute(
            text(
                "SELECT pid, datname = current_database() FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        ).all()
        backends = [pid for pid, ours in rows if ours]
        self.peak_ours = max(self.peak_ours, len(backends))
        self.peak_all = max(self.peak_all, len(rows))
        for pid in backends:
            stat = _stat(pid)
            if stat is not None:
                self.seen[pid] = ("postgres", stat[1])

    def sample_processes(self) -> None:
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                stat = _stat(int(entry.name))
                if stat is not None and stat[0] in self.sessions:
                    self.seen[int(entry.name)] = (self.sessions[stat[0]], stat[1])

    def totals(self) -> dict[str, float]:
        out: Counter[str] = Counter()
        for kind, seconds in self.seen.values():
            out[kind] += seconds
        return dict(out)


# -- the load --------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP client per thread; requests retried after a transport error
    (orders are idempotent on ``external_id``, transitions answer "already done")."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.local = threading.local()
        self.clients: list[httpx2.Client] = []
        self.lock = threading.Lock()
        self.retries = 0

    def _client(self) -> httpx2.Client:
        client = getattr(self.local, "client", None)
        if client is None:
            client = httpx2.Client(
                base_url=self.base,
                timeout=60,
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            self.local.client = client
            with self.lock:
                self.clients.append(client)
        return client

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx2.Response:
        for attempt in range(3):
            try:
                return self._client().post(path, json=body)
            except httpx2.TransportError:
                if attempt == 2:
                    raise
                with self.lock:
                    self.retries += 1
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def close(self) -> None:
        for client in self.clients:
            client.close()


def _period(seller_index: int) -> int | None:
    if seller_index >= CANCELLING_SELLERS:
        return None
    return PERIODS[seller_index % len(PERIODS)]


def _order_body(n: int, seller_id: int) -> dict[str, Any]:
    buyer = n % 500
    return {
        "external_id": f"SCALE-{n}",
        "buyer": {
            "email": f"buyer{buyer}@mail.example",
            "name": f"Buyer {buyer}",
            "locale": "fr" if buyer % 3 else "en",
        },
        "items": [
            {
                "seller_id": seller_id,
                "sku": f"SKU-{n}",
                "title": f"Article {n}",
                "quantity": 1,
                "unit_price": f"{10 + n % 90}.50",
            }
        ],
    }


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0
    sale_ids: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    race_answers: list[tuple[int, int, bool, int, bool]] = field(default_factory=list)


def _wait_healthy(base: str, serve: Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert serve.proc is not None
        if serve.proc.poll() is not None:
            raise AssertionError(f"serve exited early:\n{serve.log()}")
        try:
            if httpx2.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"serve did not answer in {timeout} s:\n{serve.log()}")


def _scalar(engine: Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def _rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)).all())


class TestScaleOut:
    def test_orders_into_two_http_processes_and_four_killed_workers_deliver_exactly_once(
        self,
        scale_db: Engine,
        pg_url: str,
        tmp_path: Path,
        counting_relay: tuple[CountingRelay, int],
    ) -> None:
        relay, relay_port = counting_relay
        http_port = free_port()
        base = f"http://127.0.0.1:{http_port}"
        config = str(_write_config(tmp_path, pg_url, http_port, relay_port))
        serve = Process(
            ("serve", "--config", config, "--workers", str(HTTP_PROCESSES)), tmp_path, "serve"
        )
        workers = [
            Process(("worker", "--config", config), tmp_path, f"worker{i}") for i in range(WORKERS)
        ]
        everyone = [serve, *workers]
        client = Client(base)
        monitor = CpuMonitor(scale_db)
        started = time.monotonic()
        try:
            serve.start()
            for worker in workers:
                worker.start()
            for process in everyone:
                monitor.watch(process)
            monitor.thread.start()
            _wait_healthy(base, serve, 60)
            startup = time.monotonic() - started

            sellers = []
            for i in range(SELLERS):
                response = client.post(
                    "/api/v1/sellers",
                    {
                        "name": f"Seller {i}",
                        "email": f"seller{i}@shop.example",
                        "locale": "fr" if i % 2 else "en",
                    },
                )
                assert response.status_code == 201, response.text
                sellers.append(response.json()["id"])

            tally = Tally()
            racers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="racer")

            def place(n: int) -> None:
                seller_index = n % SELLERS
                body = _order_body(n, sellers[seller_index])
                response = client.post("/api/v1/orders", body)
                # 503 + Retry-After is the contract's answer to an overloaded database: a
                # client retries the same order (idempotent on external_id), as this one does.
                for _ in range(5):
                    if response.status_code != 503:
                        break
                    time.sleep(float(response.headers.get("Retry-After", "1")))
                    response = client.post("/api/v1/orders", body)
                if response.status_code not in (200, 201):
                    with tally.lock:
                        tally.failures.append(f"order {n}: {response.status_code} {response.text}")
                        tally.done += 1
                    return
                sale_id = response.json()["sales"][0]["id"]
                period = _period(seller_index)
                if period is not None and (n // SELLERS) % period == period - 1:
                    _accept_then_cancel_twice(sale_id)
                with tally.lock:
                    tally.sale_ids.append(sale_id)
                    tally.done += 1

            def _accept_then_cancel_twice(sale_id: int) -> None:
                accepted = client.post(f"/api/v1/sales/{sale_id}/accept")
                if accepted.status_code != 200:
                    with tally.lock:
                        tally.failures.append(f"accept {sale_id}: {accepted.text}")
                    return
                body = {"reason": "cannot_ship", "message": "Plus en stock, désolé."}
                path = f"/api/v1/sales/{sale_id}/cancel"
                first, second = (
                    racers.submit(client.post, path, body),
                    racers.submit(client.post, path, body),
                )
                a, b = first.result(), second.result()
                with tally.lock:
                    tally.cancelled.append(sale_id)
                    tally.race_answers.append(
                        (
                            sale_id,
                            a.status_code,
                            a.status_code == 200 and a.json()["changed"],
                            b.status_code,
                            b.status_code == 200 and b.json()["changed"],
                        )
                    )

            # Kill each worker once, staggered over the posting, and start it again at once.
            kill_at = [int(ORDERS * f) for f in (0.2, 0.35, 0.5, 0.65)]
            kills: list[tuple[str, int, float]] = []
            post_started = time.monotonic()
            cpu_started = time.process_time()
            with ThreadPoolExecutor(max_workers=CLIENTS, thread_name_prefix="client") as pool:
                futures: list[Future[None]] = [pool.submit(place, n) for n in range(ORDERS)]
                for worker, threshold in zip(workers, kill_at, strict=True):
                    while tally.done < threshold and not all(f.done() for f in futures):
                        time.sleep(0.05)
                    monitor.sample_processes()
                    code = worker.kill()
                    kills.append((worker.name, code, time.monotonic() - post_started))
                    worker.start()
                    monitor.watch(worker)
                for future in futures:
                    future.result()
            racers.shutdown()
            post_seconds = time.monotonic() - post_started

            # Wait until nothing is queued and the relay has heard every row.
            deadline = time.monotonic() + DELIVERY_TIMEOUT
            while True:
                queued = _scalar(scale_db, "SELECT count(*) FROM outbox WHERE status = 'queued'")
                if queued == 0:
                    break
                assert time.monotonic() < deadline, f"{queued} still queued"
                time.sleep(0.2)
            drained = time.monotonic()
            test_cpu = time.process_time() - cpu_started
            monitor.stop.set()
            monitor.thread.join()
            with scale_db.connect() as conn:
                monitor.sample(conn)
            cpu = {**monitor.totals(), "test process (clients, relay)": test_cpu}
            deliver_after_post = drained - post_started - post_seconds

            # -- every request answered ------------------------------------------------------
            assert tally.failures == [], (
                f"{len(tally.failures)} failed requests (PostgreSQL connections at most "
                f"{monitor.peak_ours} to this test's database, {monitor.peak_all} in all; "
                f"a 500 may be 'too many clients', see serve's log): {tally.failures[:5]}\n"
                + serve.log()[-3000:]
            )
            assert len(tally.sale_ids) == ORDERS
            assert len(set(tally.sale_ids)) == ORDERS
            for name, code, _ in kills:
                assert code == -signal.SIGKILL, name

            # -- every row sent once, every seller_new_sale received by Message-ID --------
            outbox = _rows(scale_db, "SELECT template, message_id, status, sale_id FROM outbox")
            statuses = Counter(row.status for row in outbox)
            assert statuses == {"sent": len(outbox)}, statuses
            per_sale = Counter(r.sale_id for r in outbox if r.template == "seller_new_sale")
            assert len(per_sale) == ORDERS
            assert set(per_sale.values()) == {1}
            assert set(per_sale) == set(tally.sale_ids)
            sales_in_db = _scalar(scale_db, "SELECT count(*) FROM sales")
            assert sales_in_db == ORDERS

            received = relay.snapshot()
            expected = {row.message_id for row in outbox}
            assert len(expected) == len(outbox)
            missing = expected - received.keys()
            unknown = received.keys() - expected
            assert not missing, f"{len(missing)} outbox messages never reached the relay"
            assert not unknown, f"{len(unknown)} messages received that are not in the outbox"
            duplicates = sum(n - 1 for n in received.values())

            # -- one transition per action per sale, the state its events end in -----------
            twice = _rows(
                scale_db,
                "SELECT sale_id, action, count(*) FROM sale_events "
                "GROUP BY sale_id, action HAVING count(*) > 1",
            )
            assert twice == []
            astray = _rows(
                scale_db,
                "SELECT s.id, s.status, e.to_status FROM sales s JOIN LATERAL ("
                "  SELECT to_status FROM sale_events WHERE sale_id = s.id"
                "  ORDER BY id DESC LIMIT 1) e ON true "
                "WHERE s.status <> e.to_status",
            )
            assert astray == []
            by_status = dict(_rows(scale_db, "SELECT status, count(*) FROM sales GROUP BY status"))
            cancelled = len(tally.cancelled)
            expected_status = {"pending": ORDERS - cancelled, "cancelled": cancelled}
            assert by_status == {k: n for k, n in expected_status.items() if n}
            for sale_id, code_a, changed_a, code_b, changed_b in tally.race_answers:
                assert (code_a, code_b) == (200, 200), sale_id
                assert changed_a + changed_b == 1, sale_id
            notices = Counter(r.template for r in outbox if r.sale_id in set(tally.cancelled))
            for key in (
                "buyer_sale_accepted",
                "buyer_sale_cancelled",
                "support_sale_cancelled",
                "seller_sale_cancelled",
            ):
                assert notices[key] == cancelled, (key, notices)

            # -- tier emails: never more than the seller's tier changes ---------------------
            tiers = {
                row.email: row
                for row in _rows(scale_db, "SELECT email, tier, tier_version FROM sellers")
            }
            tier_mail = _rows(
                scale_db,
                "SELECT recipient, template, count(*) AS n FROM outbox "
                f"WHERE template IN {TIER_EMAILS} GROUP BY recipient, template",
            )
            per_seller: Counter[str] = Counter()
            per_key: Counter[str] = Counter()
            for row in tier_mail:
                per_seller[row.recipient] += row.n
                per_key[row.template] += row.n
            for email, n in per_seller.items():
                assert n <= tiers[email].tier_version, (email, n, tiers[email])
            tier_changes = sum(row.tier_version for row in tiers.values())
            assert sum(per_seller.values()) > 0, "no tier email at all: the policy never moved"

            # -- every process stops on SIGTERM with status 0 -------------------------------
            stopping = time.monotonic()
            for process in everyone:
                process.terminate()
            for process in everyone:
                assert process.proc is not None
                try:
                    code = process.proc.wait(30)
                except subprocess.TimeoutExpired:
                    code = None
                assert code == 0, f"{process.name} exited {code}:\n{process.last_log()[-4000:]}"
            stop_seconds = time.monotonic() - stopping
            for process in everyone:
                assert "Traceback" not in process.log(), process.log()[-4000:]

            total = time.monotonic() - started
            print(
                f"\nscale: {ORDERS} orders over {SELLERS} sellers by {CLIENTS} clients into "
                f"{HTTP_PROCESSES} HTTP processes, {WORKERS} workers (+ serve's own)\n"
                f"  start-up {startup:.1f} s; posting {post_seconds:.1f} s = "
                f"{ORDERS / post_seconds:.0f} orders/s ({client.retries} retried requests)\n"
                f"  outbox drained {deliver_after_post:.1f} s after the last order "
                f"({post_seconds + deliver_after_post:.1f} s after the first); "
                f"{len(outbox)} emails, {duplicates} sent twice on the wire\n"
                f"  {cancelled} cancelled (each cancel sent twice at once), "
                f"{tier_changes} tier changes, {sum(per_seller.values())} tier emails "
                f"{dict(per_key)}\n"
                f"  kills at {', '.join(f'{t:.1f} s' for _, _, t in kills)}; "
                f"stop {stop_seconds:.1f} s; total {total:.1f} s; "
                f"load average {os.getloadavg()[0]:.1f}\n"
                f"  CPU per order (ms, start-up included): "
                + ", ".join(f"{k} {v * 1000 / ORDERS:.1f}" for k, v in sorted(cpu.items()))
                + f"; sum {sum(cpu.values()) * 1000 / ORDERS:.1f}\n"
                f"  PostgreSQL connections at most: {monitor.peak_ours} to this database, "
                f"{monitor.peak_all} to the server"
            )
        finally:
            monitor.stop.set()
            client.close()
            for process in everyone:
                process.cleanup()
