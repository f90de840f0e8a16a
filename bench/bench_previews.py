"""Health checks while admins preview heavy templates: how long ``/healthz`` waits.

    python bench/bench_previews.py [--previews 8,16] [--loops 1000]

``mailflow serve`` runs as its own process, as a user starts it (a SQLite file, the embedded
SMTP server, on free ports, in a temporary folder). Each preview is
``POST /api/v1/templates/seller_new_sale/en/preview`` with a subject that spins ``--loops``
× 1000 empty loop steps in the sandbox (within its time limit, each answers 200; on a busy
machine some are cut at the limit, a 422 saying so, counted), the kind of template issue 14
reported. Printed, per batch size: one preview's time alone (the render),
then that many previews sent at once while ``/healthz`` is called every 20 ms until they have
all answered: the batch's time, the health checks' median and worst wait, and the worst wait
as a ratio of one render (goal: under 0.5; before renders had a limiter of their own, a check
waited for most of the batch, 6 renders' time and more at 8 previews).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

TOKEN = "bench-token-" + "x" * 24
GOAL = 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(work: Path, port: int) -> Path:
    path = work / "mailflow.toml"
    path.write_text(
        f"""
[server]
port = {port}
base_url = "http://127.0.0.1:{port}"
data_dir = "{work / "data"}"

[database]
url = "sqlite:///{work / "mailflow.db"}"

[smtp]
mode = "embedded"
embedded_port = {_free_port()}

[security]
secret_keys = ["{secrets.token_urlsafe(32)}"]

[api]
tokens = ["{TOKEN}"]
""",
        encoding="utf-8",
    )
    return path


def _serve(config: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """``mailflow serve`` started; returns once uvicorn says it is listening."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailflow", "serve", "--config", str(config)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stderr, selectors.EVENT_READ)
        err = b""
        deadline = time.monotonic() + 60
        while b"Uvicorn running on" not in err:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit(f"serve did not start: {err.decode()}")
            if selector.select(0.5):
                err += proc.stderr.read() or b""
    return proc


def _preview(port: int, subject: str, times: list[float], cut: list[int]) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/templates/seller_new_sale/en/preview",
        data=json.dumps({"subject": subject}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        # A busy machine may take the loop past the render's 2 s: cut at the limit (422).
        if exc.code != 422 or "rendering took longer than" not in exc.read().decode():
            raise
        cut.append(1)
    times.append(time.monotonic() - started)


def _healthz(port: int) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=600) as response:
        response.read()
    return time.monotonic() - started


def batch(port: int, subject: str, previews: int) -> str:
    alone: list[float] = []
    cut: list[int] = []
    _preview(port, subject, alone, cut)
    render = alone[0]
    times: list[float] = []
    threads = [
        threading.Thread(target=_preview, args=(port, subject, times, cut)) for _ in range(previews)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    waits = []
    while any(thread.is_alive() for thread in threads):
        waits.append(_healthz(port))
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    took = time.monotonic() - started
    if len(times) != previews:
        raise SystemExit(f"{previews - len(times)} previews failed")
    worst = max(waits)
    ratio = worst / render
    return (
        f"{previews:>3} previews: render alone {render * 1000:6.0f} ms, batch {took:5.2f} s; "
        f"/healthz ×{len(waits)}: median {statistics.median(waits) * 1000:5.1f} ms, "
        f"worst {worst * 1000:6.1f} ms = {ratio:.3f} × render "
        f"[{'ok' if ratio < GOAL else 'OVER'} < {GOAL}]"
        + (f"; {len(cut)} renders cut at the 2 s limit" if cut else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--previews", default="8,16", help="batch sizes, comma-separated")
    parser.add_argument("--loops", type=int, default=1000, help="outer loop steps (×1000)")
    args = parser.parse_args()
    subject = (
        f"{{% for a in range({args.loops}) %}}{{% for b in range(1000) %}}"
        "{% endfor %}{% endfor %}"
    )
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-previews-") as tmp:
        work = Path(tmp)
        port = _free_port()
        proc = _serve(_config(work, port), work)
        try:
            for _ in range(5):
                _healthz(port)
            idle = [_healthz(port) for _ in range(20)]
            print(f"/healthz idle: median {statistics.median(idle) * 1000:.1f} ms")
            for previews in (int(n) for n in args.previews.split(",")):
                print(batch(port, subject, previews), flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
