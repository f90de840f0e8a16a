"""HTTP intake and click: ``POST /api/v1/orders`` and ``POST /s/<token>`` vs a bare route.

    python bench/bench_http.py [--db sqlite,postgres] [--requests 2000] [--bare-requests 5000]
                               [--concurrency 16] [--client raw|httpx]

One uvicorn process (a subprocess: the load client never shares its GIL) serves the real app
of ``mailflow.web.app.create_app`` with one more route added by this bench,
``POST /bare`` answering ``{"ok": true}`` from a plain ``def`` (run in the threadpool, as the
order and click endpoints are). Same app, same middleware, same server, same client, same
connection count. The server runs as ``runner.serve`` configures uvicorn (the HTTP parser
and event loop uvicorn picks for "auto": httptools and uvloop when installed, as with
``uvicorn[standard]``, else h11 and asyncio; ``lifespan="off"``, no access log), without the
delivery worker and sweeper. The first line printed names the parser and loop it runs.

The load client runs in a process of its own and sends a fixed number of requests (a distinct
order or link in each, all made before the clock starts) over ``--concurrency`` keep-alive
connections: by default a minimal HTTP/1.1 client on asyncio streams (tens of µs of CPU per
request), or ``--client httpx`` an ``httpx2.AsyncClient``. Its own CPU time is printed, to
show it is not the bottleneck. (``wrk`` was not used: its main thread sleeps the whole
``-d`` whatever the script does, so it cannot send a fixed number of distinct clicks.)

Per database (SQLite file; PostgreSQL in a database made for the run and dropped after), in
this order: warm-up; bare; orders (each one item, from 50 sellers, a new buyer each 10); bare;
clicks (``POST /s/<refuse token>`` with the confirmation page's form, ``reason=out_of_stock``,
on as many distinct pending sales, those made by the orders phase); bare. Each ratio uses the
mean of the two bare runs around it. Checked after each phase: every answer 2xx, as many
orders in the database as requests, as many sales refused as clicks.

Goals (issue 7): orders ≥ 0.15 × bare; clicks ≥ 0.3 × bare with p99 < 50 ms at 16 clients.
Also printed: the server's CPU per request (``/proc``), which moves much less than wall-clock
rates when other work shares the machine, and its ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECRET = "bench-secret-" + "k" * 40
API_TOKEN = "bench-token-" + "x" * 24
PG_ADMIN_URL = os.environ.get(
    "MAILFLOW_TEST_PG_URL", "postgresql+psycopg://mailflow:mailflow@127.0.0.1/postgres"
)
SELLERS = 50
GOAL_ORDERS = 0.15
GOAL_CLICKS = 0.3
GOAL_P99_MS = 50.0
_TICK = os.sysconf("SC_CLK_TCK")


def settings_for(db_url: str, port: int) -> Any:
    from mailflow.config import Settings

    return Settings.model_validate(
        {
            "server": {"base_url": f"http://127.0.0.1:{port}", "host": "127.0.0.1", "port": port},
            "database": {"url": db_url},
            # Relay mode pointed at a closed port: nothing here delivers, mail stays queued.
            "smtp": {"mode": "relay", "host": "127.0.0.1", "port": 9},
            "security": {"secret_keys": [SECRET]},
            "api": {"tokens": [API_TOKEN]},
        }
    )


# -- the server (``bench_http.py --serve URL PORT``, a subprocess) -----------------------------


def server_config(app: Any, port: int, **overrides: Any) -> Any:
    """The server's uvicorn configuration, as ``runner.serve``'s (``http`` left on "auto")."""
    import uvicorn

    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "lifespan": "off",
        "log_level": "warning",
        "access_log": False,
        **overrides,
    }
    return uvicorn.Config(app, **options)


def server_stack(config: Any | None = None) -> str:
    """The HTTP parser and event loop the server runs, e.g. ``"httptools, uvloop"``: the
    protocol class uvicorn loads for ``config`` (by default the server's) and the loop
    ``runner.run`` makes, as ``serve`` below runs them."""
    from mailflow import runner

    async def _no_app(scope: Any, receive: Any, send: Any) -> None:
        raise NotImplementedError

    if config is None:
        config = server_config(_no_app, 0, log_config=None)
    if not config.loaded:
        config.load()
    module = config.http_protocol_class.__module__  # uvicorn.protocols.http.httptools_impl
    http = module.rpartition(".")[2].removesuffix("_impl")
    factory = runner.loop_factory()
    loop = factory() if factory is not None else asyncio.new_event_loop()
    try:
        loop_name = type(loop).__module__.partition(".")[0]  # uvloop, asyncio
    finally:
        loop.close()
    return f"{http}, {loop_name}"


def banner(client: str, concurrency: int) -> str:
    return (
        f"bench_http: python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; client {client}"
        + (" (asyncio streams" if client == "raw" else " (httpx2.AsyncClient")
        + ", own process)"
        + f", {concurrency} connections; one uvicorn process ({server_stack()})"
    )


def serve(db_url: str, port: int, breakdown: bool) -> None:
    import uvicorn

    from mailflow import runner
    from mailflow.bootstrap import build
    from mailflow.web.app import create_app

    system = build(settings_for(db_url, port))
    app = create_app(system)
    app.add_api_route("/bare", lambda: {"ok": True}, methods=["POST"])
    if breakdown:
        from _breakdown import Meter

        Meter().install(system, app)
    runner.run(uvicorn.Server(server_config(app, port)).serve())


# -- load clients ------------------------------------------------------------------------------


@dataclass
class Phase:
    label: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int
    client_cpu: float
    server_cpu: float
    meter: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def line(self) -> str:
        return (
            f"  {self.label:<8} {self.requests:>6} req in {self.seconds:6.2f} s = "
            f"{self.rate:7.0f} req/s   p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:6.1f} ms   "
            f"server CPU {self.server_cpu * 1000 / self.requests:5.2f} ms/req   "
            f"client CPU {self.client_cpu * 1000 / self.requests:5.2f} ms/req"
            + (f"   FAILED {self.failures}" if self.failures else "")
        )


def order_body(prefix: str, n: int) -> dict[str, Any]:
    buyer = n // 10
    return {
        "external_id": f"{prefix}-{n}",
        "buyer": {"email": f"b{prefix}{buyer}@buyers.example", "name": f"Buyer {buyer}"},
        "items": [
            {
                "seller_id": 1 + n % SELLERS,
                "sku": f"{prefix}-{n}",
                "title": f"Article {n}",
                "quantity": 1,
                "unit_price": "12.50",
            }
        ],
    }


def _requests(spec: dict[str, Any]) -> list[tuple[str, bytes, dict[str, str]]]:
    """(path, body, headers) of every request of a phase, made before the clock starts."""
    kind, prefix = spec["kind"], spec["prefix"]
    if kind == "bare":
        return [("/bare", b"", {})] * spec["limit"]
    if kind == "order":
        auth = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
        return [
            (
                "/api/v1/orders",
                json.dumps(order_body(prefix, n), separators=(",", ":")).encode(),
                auth,
            )
            for n in range(1, spec["limit"] + 1)
        ]
    paths = Path(spec["paths"]).read_text().split()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    return [(paths[n], b"reason=out_of_stock", form) for n in range(spec["limit"])]


async def _raw_load(spec: dict[str, Any]) -> tuple[list[float], int, float]:
    """HTTP/1.1 keep-alive over asyncio streams: a few tens of µs of CPU per request."""
    host, port = spec["host"], spec["port"]
    wire = [
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        ).encode()
        + body
        for path, body, headers in _requests(spec)
    ]
    latencies: list[float] = []
    failures = 0
    next_index = 0
    conns = [await asyncio.open_connection(host, port) for _ in range(spec["concurrency"])]

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal next_index, failures
        while next_index < len(wire):
            request = wire[next_index]
            next_index += 1
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            failures += int(head[9:12]) >= 300
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(run(r, w) for r, w in conns))
    return latencies, failures, time.perf_counter() - t0


async def _httpx_load(spec: dict[str, Any]) -> tuple[list[float], int, float]:
    import httpx2

    todo = _requests(spec)
    latencies: list[float] = []
    failures = 0
    next_index = 0
    limits = httpx2.Limits(max_connections=spec["concurrency"])
    base = f"http://{spec['host']}:{spec['port']}"
    async with httpx2.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def run() -> None:
            nonlocal next_index, failures
            while next_index < len(todo):
                path, body, headers = todo[next_index]
                next_index += 1
                t0 = time.perf_counter()
                response = await client.post(path, content=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                failures += response.status_code >= 300

        t0 = time.perf_counter()
        await asyncio.gather(*(run() for _ in range(spec["concurrency"])))
        return latencies, failures, time.perf_counter() - t0


def load_main(spec: dict[str, Any]) -> None:
    """The load client's process: run one phase, print its figures as JSON."""
    runner = _raw_load if spec["client"] == "raw" else _httpx_load
    cpu0 = time.process_time()
    latencies, failures, seconds = asyncio.run(runner(spec))
    cpu = time.process_time() - cpu0
    latencies.sort()
    n = len(latencies)
    print(
        json.dumps(
            {
                "requests": n,
                "seconds": seconds,
                "p50": latencies[n // 2] * 1000,
                "p99": latencies[min(n - 1, int(n * 0.99))] * 1000,
                "failures": failures,
                "cpu": cpu,
            }
        ),
        flush=True,
    )


def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--load", json.dumps(spec)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- the run -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _meter(port: int) -> dict[str, int]:
    """The bench server's ``Meter`` totals (``--breakdown``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/meter", timeout=10) as answer:
        return json.load(answer)  # type: ignore[no-any-return]


def _cpu_of(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


@contextlib.contextmanager
def database(kind: str, work: Path) -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from mailflow.store import migrate
    from mailflow.store.database import Database

    if kind == "sqlite":
        url = f"sqlite:///{work / 'bench.db'}"
        db = Database.from_url(url)
        migrate.upgrade(db.engine)
        db.dispose()
        yield url
        return
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"mailflow_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        engine = create_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_one(kind: str, args: argparse.Namespace, client: str, work: Path) -> dict[str, Phase]:
    from sqlalchemy import func, select

    from mailflow.bootstrap import build
    from mailflow.schemas import SellerIn
    from mailflow.services import sellers
    from mailflow.store.models import Order, Sale

    with database(kind, work) as url:
        port = _free_port()
        system = build(settings_for(url, port))
        for i in range(SELLERS):
            sellers.create_seller(
                system.services,
                SellerIn(name=f"Seller {i}", email=f"seller{i}@sellers.example", locale="fr"),
            )
        command = [sys.executable, __file__, "--serve", url, str(port)]
        server = subprocess.Popen(command + ["--breakdown"] * args.breakdown)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.1)

            def phase(label: str, kind_: str, n: int, paths: Path | None = None) -> Phase:
                prefix = f"{label}{secrets.token_hex(3)}"
                spec = {
                    "client": client,
                    "host": "127.0.0.1",
                    "port": port,
                    "kind": kind_,
                    "limit": n,
                    "concurrency": args.concurrency,
                    "prefix": prefix,
                    "paths": str(paths) if paths else "",
                }
                meter0 = _meter(port) if args.breakdown else {}
                cpu0 = _cpu_of(server.pid)
                r = run_load(spec)
                server_cpu = _cpu_of(server.pid) - cpu0
                meter = _meter(port) if args.breakdown else {}
                result = Phase(
                    label,
                    r["requests"],
                    r["seconds"],
                    r["p50"],
                    r["p99"],
                    r["failures"],
                    r["cpu"],
                    server_cpu,
                    {k: v - meter0.get(k, 0) for k, v in meter.items()},
                )
                if label != "warm-up":
                    print(result.line(), flush=True)
                return result

            phase("warm-up", "bare", 500)
            phase("warm-up", "order", 200)
            with system.db.read() as session:
                orders_before = session.execute(select(func.count()).select_from(Order)).scalar()
            results = {"bare1": phase("bare", "bare", args.bare_requests)}
            results["orders"] = phase("orders", "order", args.requests)
            with system.db.read() as session:
                made = session.execute(select(func.count()).select_from(Order)).scalar_one()
                pending = (
                    session.execute(
                        select(Sale.id).where(Sale.status == "pending").order_by(Sale.id.desc())
                    )
                    .scalars()
                    .all()
                )
            if made - (orders_before or 0) != results["orders"].requests:
                raise SystemExit(f"{made - (orders_before or 0)} orders made, expected more")
            results["bare2"] = phase("bare", "bare", args.bare_requests)
            # One distinct pending sale per click.
            links = work / f"links-{kind}.txt"
            links.write_text(
                "\n".join(f"/s/{system.signer.sale_token(s, 'refuse')}" for s in pending) + "\n"
            )
            clicks = min(args.requests, len(pending))
            with system.db.read() as session:
                refused0 = session.execute(
                    select(func.count()).select_from(Sale).where(Sale.status == "refused")
                ).scalar_one()
            results["clicks"] = phase("clicks", "click", clicks, links)
            with system.db.read() as session:
                refused = session.execute(
                    select(func.count()).select_from(Sale).where(Sale.status == "refused")
                ).scalar_one()
            if refused - refused0 < results["clicks"].requests:
                raise SystemExit(f"{refused - refused0} sales refused for {clicks} clicks")
            results["bare3"] = phase("bare", "bare", args.bare_requests)
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            system.close()
    for label, result in results.items():
        if result.failures:
            raise SystemExit(f"{kind} {label}: {result.failures} failed requests")
    return results


def summary(kind: str, r: dict[str, Phase], concurrency: int) -> list[str]:
    bare_o = statistics.mean([r["bare1"].rate, r["bare2"].rate])
    bare_c = statistics.mean([r["bare2"].rate, r["bare3"].rate])
    cpu_bare = statistics.mean(p.server_cpu / p.requests for k, p in r.items() if "bare" in k)
    o, c = r["orders"], r["clicks"]
    ratio_o, ratio_c = o.rate / bare_o, c.rate / bare_c
    cpu_o = cpu_bare / (o.server_cpu / o.requests)
    cpu_c = cpu_bare / (c.server_cpu / c.requests)

    def mark(ok: bool) -> str:
        return "met" if ok else "MISSED"

    return [
        f"{kind}:",
        f"  orders / bare = {o.rate:.0f} / {bare_o:.0f} = {ratio_o:.3f}   "
        f"(goal ≥ {GOAL_ORDERS}: {mark(ratio_o >= GOAL_ORDERS)}; server-CPU ratio {cpu_o:.3f})",
        f"  clicks / bare = {c.rate:.0f} / {bare_c:.0f} = {ratio_c:.3f}   "
        f"(goal ≥ {GOAL_CLICKS}: {mark(ratio_c >= GOAL_CLICKS)}; server-CPU ratio {cpu_c:.3f})",
        f"  clicks at {concurrency} clients: p50 {c.p50_ms:.1f} ms, p99 {c.p99_ms:.1f} ms   "
        f"(goal p99 < {GOAL_P99_MS:.0f} ms: {mark(c.p99_ms < GOAL_P99_MS)})",
    ] + (breakdown(r, cpu_bare * 1000) if o.meter else [])


def breakdown(r: dict[str, Phase], bare_ms: float) -> list[str]:
    from _breakdown import lines

    return ["  where the server's CPU goes, ms per request (--breakdown):"] + [
        lines(p.label, p.requests, p.server_cpu, bare_ms, p.meter)
        for p in (r["orders"], r["clicks"])
    ]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), "--breakdown" in sys.argv[4:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        load_main(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--requests", type=int, default=2000, help="orders, then clicks")
    parser.add_argument("--bare-requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the parts of each request inside the server (bench/_breakdown.py)",
    )
    args = parser.parse_args()
    client = args.client
    print(banner(client, args.concurrency), flush=True)
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        for kind in [k.strip() for k in args.db.split(",") if k.strip()]:
            print(f"{kind}:", flush=True)
            results = bench_one(kind, args, client, Path(tmp))
            lines += summary(kind, results, args.concurrency)
    print(f"summary (load average {os.getloadavg()[0]:.1f}):")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
