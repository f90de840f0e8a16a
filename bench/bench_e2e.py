"""End to end: orders posted over HTTP → every seller email at an SMTP sink, vs a raw blast.

    python bench/bench_e2e.py [--orders 5000] [--db sqlite,postgres] [--clients 16]
                              [--concurrency 8] [--client raw|httpx]

(a) baseline: ``bench_delivery.blast``: ``--concurrency`` persistent ``aiosmtplib`` connections
    send ``--orders`` copies of one prepared message (a real ``seller_new_sale`` body taken
    from the mailflow run's outbox) to the sink, as fast as they can.
(b) mailflow: the real ``mailflow serve --config FILE`` (one process: uvicorn, the delivery
    worker with ``smtp.concurrency = --concurrency``, the sweeper and, on PostgreSQL, the
    LISTEN wake-up), relay mode pointed at the same sink. 50 sellers are made beforehand; then
    ``--orders`` orders (one item each) are posted by ``bench_http``'s load client (its own
    process, ``--clients`` keep-alive connections), and the clock runs from the start of the
    posting until the sink holds ``--orders`` distinct Message-IDs.

The sink is ``bench/_sink.py`` in its own process. Checked: the sink received exactly the
messages of the outbox (distinct Message-IDs = orders), every outbox row ``sent``, every POST
answered 201. Printed: both rates, the ratio (goal ≥ 0.35), the posting rate alone, and the
CPU per order of the serve process, the sink and the load client (``/proc``), which moves less
than wall-clock rates when other work shares the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiosmtplib
from _sink import Sink
from bench_delivery import blast
from bench_http import API_TOKEN, SECRET, SELLERS, database, run_load
from sqlalchemy import func, select

from mailflow.bootstrap import build
from mailflow.config import load
from mailflow.schemas import SellerIn
from mailflow.services import sellers
from mailflow.store.models import OutboxMessage

GOAL = 0.35
MAILFLOW = str(Path(sys.executable).parent / "mailflow")
_TICK = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_of(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def write_config(work: Path, db_url: str, port: int, sink_port: int, concurrency: int) -> Path:
    path = work / f"e2e-{port}.toml"
    path.write_text(
        f"""
[server]
base_url = "http://127.0.0.1:{port}"
host = "127.0.0.1"
port = {port}
data_dir = "{work / "data"}"

[database]
url = "{db_url}"

[smtp]
mode = "relay"
host = "127.0.0.1"
port = {sink_port}
concurrency = {concurrency}

[security]
secret_keys = ["{SECRET}"]

[api]
tokens = ["{API_TOKEN}"]
""",
        encoding="utf-8",
    )
    return path


def run_mailflow(
    kind: str, sink: Sink, args: argparse.Namespace, work: Path
) -> tuple[dict[str, Any], tuple[str, str, bytes]]:
    with database(kind, work) as url:
        port = _free_port()
        config = write_config(work, url, port, sink.port, args.concurrency)
        system = build(load(config).settings)
        for i in range(SELLERS):
            sellers.create_seller(
                system.services,
                SellerIn(name=f"Seller {i}", email=f"seller{i}@sellers.example", locale="fr"),
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
        log = (work / f"serve-{kind}.log").open("wb")
        server = subprocess.Popen(
            [MAILFLOW, "serve", "--config", str(config)],
            cwd=work,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit(f"mailflow serve did not start, see {log.name}") from None
                    time.sleep(0.1)
            time.sleep(1.0)  # the worker's first claim and sweep, outside the timing
            sink.reset()
            spec = {
                "client": args.client,
                "host": "127.0.0.1",
                "port": port,
                "kind": "order",
                "limit": args.orders,
                "concurrency": args.clients,
                "prefix": f"e2e{secrets.token_hex(3)}",
                "paths": "",
            }
            posted: dict[str, Any] = {}
            failed: list[BaseException] = []

            def post() -> None:
                try:
                    posted.update(run_load(spec))
                except BaseException as exc:
                    failed.append(exc)

            serve_cpu0 = _cpu_of(server.pid)
            t0 = time.perf_counter()
            poster = threading.Thread(target=post, daemon=True)
            poster.start()
            deadline = time.monotonic() + args.timeout
            while True:
                stats = sink.stats()
                if stats.distinct_ids >= args.orders:
                    break
                if failed:
                    raise SystemExit(f"{kind}: the load client failed: {failed[0]}")
                if time.monotonic() > deadline:
                    raise SystemExit(f"{kind}: only {stats.distinct_ids} emails at the sink")
                time.sleep(0.02)
            seconds = time.perf_counter() - t0
            serve_cpu = _cpu_of(server.pid) - serve_cpu0
            poster.join()
            time.sleep(0.5)
            stats = sink.stats()
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
        with system.db.read() as session:
            statuses = dict(
                session.execute(
                    select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                ).all()
            )
            sample = session.execute(
                select(OutboxMessage.sender, OutboxMessage.recipient, OutboxMessage.body)
                .order_by(OutboxMessage.id)
                .limit(1)
            ).one()
        system.close()
    problems = []
    if posted.get("failures") or posted.get("requests") != args.orders:
        problems.append(f"posting: {posted}")
    if statuses != {"sent": args.orders}:
        problems.append(f"outbox statuses {statuses}")
    if stats.distinct_ids != args.orders:
        problems.append(f"sink: {stats.messages} messages, {stats.distinct_ids} distinct")
    if problems:
        raise SystemExit(f"{kind}: " + "; ".join(problems))
    result = {
        "seconds": seconds,
        "post_seconds": posted["seconds"],
        "serve_cpu": serve_cpu,
        "sink_cpu": stats.cpu_seconds,
        "client_cpu": posted["cpu"],
        "duplicates": stats.messages - stats.distinct_ids,
    }
    return result, (sample.sender, sample.recipient, bytes(sample.body))


def run_baseline(sink: Sink, args: argparse.Namespace, message: tuple[str, str, bytes]) -> float:
    sender, rcpt, body = message
    sink.reset()
    seconds = asyncio.run(
        blast(sink.host, sink.port, args.concurrency, args.orders, sender, rcpt, body)
    )
    stats = sink.stats()
    if stats.messages != args.orders:
        raise SystemExit(f"baseline: sink received {stats.messages}, expected {args.orders}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--clients", type=int, default=16, help="HTTP connections posting")
    parser.add_argument("--concurrency", type=int, default=8, help="SMTP connections")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    print(
        f"bench_e2e: {args.orders} orders, {args.clients} HTTP clients ({args.client}), "
        f"SMTP concurrency {args.concurrency}; python {platform.python_version()}, "
        f"aiosmtplib {aiosmtplib.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    lines = []
    with Sink() as sink, tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        for kind in [k.strip() for k in args.db.split(",") if k.strip()]:
            mine, message = run_mailflow(kind, sink, args, Path(tmp))
            base_seconds = run_baseline(sink, args, message)
            n = args.orders
            rate, base_rate = n / mine["seconds"], n / base_seconds
            per = 1000 / n
            print(
                f"{kind}:\n"
                f"  baseline blast : {n} msgs in {base_seconds:6.2f} s = {base_rate:6.0f} msg/s "
                f"({len(message[2])} bytes each)\n"
                f"  mailflow e2e   : {n} orders → {n} emails in {mine['seconds']:6.2f} s = "
                f"{rate:6.0f} /s (posting alone {mine['post_seconds']:.2f} s = "
                f"{n / mine['post_seconds']:.0f} orders/s; "
                f"{mine['duplicates']} sent twice)\n"
                f"  CPU per order  : serve {mine['serve_cpu'] * per:.2f} ms, "
                f"sink {mine['sink_cpu'] * per:.2f} ms, "
                f"load client {mine['client_cpu'] * per:.2f} ms",
                flush=True,
            )
            ratio = rate / base_rate
            lines.append(
                f"  {kind}: e2e / blast = {rate:.0f} / {base_rate:.0f} = {ratio:.3f}   "
                f"(goal ≥ {GOAL}: {'met' if ratio >= GOAL else 'MISSED'})"
            )
    print(f"summary (load average {os.getloadavg()[0]:.1f}):")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
