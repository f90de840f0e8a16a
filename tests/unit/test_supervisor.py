"""The supervisor: a failing task is logged with its traceback, restarted with backoff and
counted, the others go on, and a stop ends everything."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from mailflow.supervisor import Supervisor, beat
from mailflow.telemetry import Telemetry


def _sample(telemetry: Telemetry, name: str, task: str) -> float | None:
    return telemetry.registry.get_sample_value(name, {"task": task})


def test_a_failing_task_restarts_with_backoff_while_another_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    telemetry = Telemetry()
    supervisor = Supervisor(telemetry, first_delay=0.1, max_delay=0.4)
    calls: list[float] = []
    steady_rounds = 0

    async def flaky() -> None:
        calls.append(time.monotonic())
        if len(calls) <= 4:
            raise ConnectionError(f"database away ({len(calls)})")
        beat()
        await asyncio.Event().wait()  # runs until cancelled by the stop below

    async def steady(stop: asyncio.Event) -> None:
        nonlocal steady_rounds
        while not stop.is_set():
            steady_rounds += 1
            beat()
            await asyncio.sleep(0.01)

    async def main() -> None:
        stop = asyncio.Event()
        flaky_task = supervisor.start("flaky", flaky, stop)
        steady_task = supervisor.start("steady", lambda: steady(stop), stop, stale_after=5)
        while len(calls) < 5:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)
        states = {s.name: s for s in supervisor.states()}
        assert states["flaky"].up and states["flaky"].restarts == 4
        assert states["flaky"].problem(time.time()) is None
        assert states["steady"].restarts == 0
        stop.set()
        await steady_task
        flaky_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flaky_task

    with caplog.at_level(logging.INFO, logger="mailflow.supervisor"):
        asyncio.run(main())

    # Backoff doubling from 0.1 s, capped at 0.4 s: 0.1, 0.2, 0.4, 0.4 (said in the log, and
    # waited: at least that long, at most a busy machine's second more).
    failures = [r for r in caplog.records if r.getMessage().startswith("task flaky failed")]
    delays = [r.getMessage().rsplit(" in ", 1)[1] for r in failures]
    assert delays == ["0.1 s", "0.2 s", "0.4 s", "0.4 s"]
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    for gap, expected in zip(gaps, [0.1, 0.2, 0.4, 0.4], strict=True):
        assert expected * 0.9 <= gap < expected + 1.0, gaps
    assert all(r.exc_info and isinstance(r.exc_info[1], ConnectionError) for r in failures)
    assert steady_rounds > 10
    assert _sample(telemetry, "mailflow_task_restarts_total", "flaky") == 4
    assert _sample(telemetry, "mailflow_task_restarts_total", "steady") is None
    assert _sample(telemetry, "mailflow_task_up", "steady") == 0  # stopped
    assert (_sample(telemetry, "mailflow_task_last_success_seconds", "flaky") or 0) > 0


def test_a_task_that_ends_by_itself_is_restarted_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = Supervisor(first_delay=0.01)
    runs = 0

    async def main() -> None:
        stop = asyncio.Event()

        async def quits() -> None:
            nonlocal runs
            runs += 1
            if runs == 3:
                stop.set()

        await supervisor.start("quits", quits, stop)

    with caplog.at_level(logging.ERROR, logger="mailflow.supervisor"):
        asyncio.run(main())
    assert runs == 3
    assert [r.getMessage()[:26] for r in caplog.records] == ["task quits ended by itself"] * 2
    [state] = supervisor.states()
    assert not state.up and state.restarts == 2
    assert state.problem(time.time()) == "not running: ended by itself"


def test_a_stop_during_the_backoff_ends_the_task_at_once() -> None:
    supervisor = Supervisor(first_delay=30)

    async def fails() -> None:
        raise RuntimeError("always")

    async def main() -> float:
        stop = asyncio.Event()
        task = supervisor.start("fails", fails, stop)
        await asyncio.sleep(0.05)
        started = time.monotonic()
        stop.set()
        await task
        return time.monotonic() - started

    assert asyncio.run(main()) < 0.5
    [state] = supervisor.states()
    assert state.restarts == 0 and state.last_error == "RuntimeError: always"


def test_a_task_without_success_for_too_long_is_stale() -> None:
    supervisor = Supervisor()

    async def main() -> None:
        stop = asyncio.Event()

        async def idle() -> None:
            await stop.wait()

        task = supervisor.start("idle", idle, stop, stale_after=0.05)
        await asyncio.sleep(0.01)
        [state] = supervisor.states()
        assert state.problem(time.time()) is None
        await asyncio.sleep(0.1)
        problem = state.problem(time.time())
        assert problem is not None and problem.startswith("no successful round for")
        stop.set()
        await task

    asyncio.run(main())
