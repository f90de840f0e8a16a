"""``server.threads``: the app's blocking work runs on at most that many threads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import httpx2

from mailflow.bootstrap import System
from mailflow.web.app import create_app


def _busy_app(system: System) -> tuple[object, Callable[[], int]]:
    """The real app plus a sync route that holds its thread a while and counts overlap."""
    app = create_app(system)
    lock = threading.Lock()
    running = 0
    most = 0

    def hold() -> dict[str, int]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.1)
        with lock:
            running -= 1
        return {"ok": 1}

    app.add_api_route("/hold", hold, methods=["GET"])
    return app, lambda: most


async def _hit(app: object, requests: int) -> list[int]:
    transport = httpx2.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx2.AsyncClient(transport=transport, base_url="http://mailflow.test") as c:
        answers = await asyncio.gather(*(c.get("/hold") for _ in range(requests)))
    return [a.status_code for a in answers]


def test_sync_work_runs_on_at_most_server_threads(
    sqlite_url: str, make_system: Callable[..., System]
) -> None:
    app, most = _busy_app(make_system(sqlite_url, server={"threads": 2}))
    started = time.monotonic()
    assert asyncio.run(_hit(app, 8)) == [200] * 8
    assert most() == 2
    assert time.monotonic() - started >= 0.4  # 8 requests, 2 at a time, 0.1 s each


def test_more_threads_run_more_at_once(sqlite_url: str, make_system: Callable[..., System]) -> None:
    app, most = _busy_app(make_system(sqlite_url, server={"threads": 8}))
    assert asyncio.run(_hit(app, 8)) == [200] * 8
    assert most() > 2
