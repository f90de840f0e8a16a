"""What one PostgreSQL round trip costs a thread while other Python threads are busy.

    python bench/bench_gil.py [--statements 500] [--busy 0,1,3]

One psycopg connection runs ``SELECT %s::int`` ``--statements`` times, first alone (the
baseline, in the same run), then while 1 and 3 other threads spin in pure Python. Each
round trip lets go of the interpreter lock while it waits for the server, and must take it
back from a busy thread. This prints the thread CPU time (``time.thread_time``) and wall time
per statement, and their ratios to the baseline. In a server, the event loop and the other
request threads are those busy threads. This is why docs/performance.md note 3 finds
psycopg's share of a click so much larger under load than in a loop on its own.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import psycopg
from sqlalchemy.engine import make_url

PG_URL = os.environ.get(
    "MAILFLOW_TEST_PG_URL", "postgresql+psycopg://mailflow:mailflow@127.0.0.1/postgres"
)


def per_statement(conn: psycopg.Connection, n: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per round trip, on the calling thread."""
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    with conn.cursor() as cursor:
        for i in range(n):
            cursor.execute("SELECT %s::int", (i,))
            cursor.fetchone()
    return (time.thread_time() - cpu0) / n * 1e6, (time.perf_counter() - wall0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=500)
    parser.add_argument("--busy", default="0,1,3", help="busy threads, one measure each")
    args = parser.parse_args()
    url = make_url(PG_URL)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    print(
        f"bench_gil: python {sys.version.split()[0]}, psycopg {psycopg.__version__} "
        f"({psycopg.pq.__impl__}), switch interval {sys.getswitchinterval() * 1000:.0f} ms, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    with psycopg.connect(dsn) as conn:
        per_statement(conn, 200)  # warm-up
        base_cpu = base_wall = 0.0
        for busy in [int(b) for b in args.busy.split(",")]:
            stop = threading.Event()

            def spin(stop: threading.Event = stop) -> None:
                n = 0
                while not stop.is_set():
                    n += 1

            threads = [threading.Thread(target=spin) for _ in range(busy)]
            for thread in threads:
                thread.start()
            try:
                cpu, wall = per_statement(conn, args.statements)
            finally:
                stop.set()
                for thread in threads:
                    thread.join()
            if busy == 0:
                base_cpu, base_wall = cpu, wall
            ratio = ""
            if base_cpu:
                ratio = f"   ×{cpu / base_cpu:5.1f} CPU, ×{wall / base_wall:6.1f} wall"
            print(
                f"  {busy} busy thread(s): {cpu:7.0f} µs CPU, {wall:8.0f} µs wall a statement"
                + ratio
            )


if __name__ == "__main__":
    main()
