"""Webhook deliveries per second, against a bare loop of the same HTTP client.

In one run, against the same receiver (uvicorn with a bare ASGI app answering 200, in a
process of its own so that it does not take the measured process's CPU), at the same
concurrency:

* **baseline**: ``--concurrency`` tasks posting ``--events`` bodies with one pooled
  ``httpx2.AsyncClient``: the most the client and the receiver can do;
* **mailflow**: ``--events`` events queued through ``services.webhooks.queue_event`` (one per
  sale, so none waits for another), then the webhook worker delivering them until none is
  left: claims, address check, signing, posting, results and attempts written back.

Prints both rates and their ratio (the goal is at least 0.5).

    python bench/bench_webhooks.py [--events 2000] [--concurrency 8] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from mailflow.bootstrap import build
from mailflow.config import Settings
from mailflow.services import webhooks
from mailflow.store import migrate

RECEIVER = """
import sys, uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, lifespan="off")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("the receiver did not start")


async def baseline(url: str, events: int, concurrency: int, body: bytes) -> float:
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(limits=limits, trust_env=False) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(events):
            queue.put_nowait(i)

        async def poster() -> None:
            while not queue.empty():
                queue.get_nowait()
                response = await client.post(url, content=body)
                assert response.status_code == 200

        started = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(concurrency)))
        return events / (time.perf_counter() - started)


def mailflow_rate(url: str, events: int, concurrency: int, db_url: str) -> float:
    settings = Settings.model_validate(
        {
            "database": {"url": db_url},
            "security": {"secret_keys": ["bench-" + "k" * 40]},
            "webhooks": {
                "allow_http": True,
                "allow_private_networks": True,
                "concurrency": concurrency,
            },
        }
    )
    system = build(settings)
    migrate.upgrade(system.db.engine)
    ctx = system.services
    webhooks.create_endpoint(ctx, url, ["sale.created"])
    data = {"id": 0, "status": "pending", "title": "Le Petit Prince", "amount": "12.50"}
    for start in range(0, events, 500):
        with ctx.db.transaction() as tx:
            for i in range(start, min(start + 500, events)):
                webhooks.queue_event(ctx, tx, "sale.created", f"sale:{i + 1}", {**data, "id": i})
    worker = system.webhook_worker(poll_seconds=0.05)
    started = time.perf_counter()
    asyncio.run(worker.run(until_idle=True))
    elapsed = time.perf_counter() - started
    assert worker.delivered_count == events, worker.delivered_count
    system.close()
    return events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--db", default="sqlite", help="sqlite, or a postgresql+psycopg:// URL")
    args = parser.parse_args()
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    try:
        wait_listening(port)
        url = f"http://127.0.0.1:{port}/hooks"
        body = b'{"id":"evt_0","type":"sale.created","sequence":1,"data":{}}'
        base = asyncio.run(baseline(url, args.events, args.concurrency, body))
        with tempfile.TemporaryDirectory() as folder:
            db_url = args.db
            if db_url == "sqlite":
                db_url = f"sqlite:///{Path(folder) / 'bench.db'}"
            rate = mailflow_rate(url, args.events, args.concurrency, db_url)
    finally:
        receiver.terminate()
        receiver.wait(10)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"baseline (httpx2, {args.concurrency} tasks): {base:8.0f} requests/s")
    print(f"mailflow webhook worker:          {rate:8.0f} events/s")
    print(f"ratio: {rate / base:.2f} (goal ≥ 0.5)")


if __name__ == "__main__":
    main()
