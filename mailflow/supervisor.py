"""Long-running tasks under supervision: a task that fails is logged with its traceback at
once and started again after a backoff, forever, until its stop event is set.

``Supervisor.start(name, run, stop)`` runs ``run()`` (a coroutine function) as an asyncio
task named ``name``. When ``run()`` raises, the failure is logged (``task <name> failed``,
with the traceback), counted (``mailflow_task_restarts_total{task}``) and ``run()`` is called
again after ``FIRST_DELAY_SECONDS`` doubling up to ``MAX_DELAY_SECONDS`` (the doubling starts
over once the task succeeds again). A ``run()`` that returns while ``stop`` is not set is a
failure too: a long-running task that ends by itself is a bug, never a silent stop. One task
failing never touches the others: each is its own asyncio task.

A task says it did a round of its work successfully by calling ``beat()`` (module-level: it
finds the running task through a context variable, also from a thread started with
``asyncio.to_thread``); that sets ``mailflow_task_last_success_seconds{task}``. A task
started with ``stale_after`` counts as not ready (``/readyz``) when it has not succeeded for
that long. ``mailflow_task_up{task}`` is 1 while the task runs, 0 while it waits for its
restart or after it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

from mailflow.telemetry import Telemetry

log = logging.getLogger(__name__)

FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 30.0

_current: ContextVar[TaskState | None] = ContextVar("mailflow_supervised_task", default=None)


def beat() -> None:
    """The supervised task this runs in did a round of its work successfully (no-op outside
    a supervised task)."""
    state = _current.get()
    if state is not None:
        state.succeeded()


@dataclass
class TaskState:
    """What the supervisor knows of one task (times are Unix seconds)."""

    name: str
    stale_after: float | None
    telemetry: Telemetry | None
    up: bool = False
    restarts: int = 0
    failures_in_a_row: int = 0
    started_at: float = 0.0
    last_success: float | None = None
    last_error: str | None = None

    def running(self) -> None:
        self.up = True
        self.started_at = time.time()
        if self.telemetry is not None:
            self.telemetry.task_up.labels(task=self.name).set(1)

    def succeeded(self) -> None:
        self.last_success = time.time()
        self.failures_in_a_row = 0
        if self.telemetry is not None:
            self.telemetry.task_last_success_seconds.labels(task=self.name).set(self.last_success)

    def stopped(self) -> None:
        self.up = False
        if self.telemetry is not None:
            self.telemetry.task_up.labels(task=self.name).set(0)

    def failed(self, error: str) -> None:
        self.stopped()
        self.failures_in_a_row += 1
        self.last_error = error

    def restarting(self) -> None:
        self.restarts += 1
        if self.telemetry is not None:
            self.telemetry.task_restarts_total.labels(task=self.name).inc()

    def problem(self, now: float) -> str | None:
        """What is wrong with the task (``None``: it runs and, if it must, succeeds)."""
        if not self.up:
            return f"not running: {self.last_error}" if self.last_error else "not running"
        if self.stale_after is not None:
            since = self.last_success if self.last_success is not None else self.started_at
            if now - since > self.stale_after:
                return f"no successful round for {now - since:.0f} s"
        return None


class Supervisor:
    """Starts tasks and keeps them running; one per running system (``System.supervisor``)."""

    def __init__(
        self,
        telemetry: Telemetry | None = None,
        *,
        first_delay: float = FIRST_DELAY_SECONDS,
        max_delay: float = MAX_DELAY_SECONDS,
    ) -> None:
        self.telemetry = telemetry
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._states: dict[str, TaskState] = {}

    def start(
        self,
        name: str,
        run: Callable[[], Awaitable[None]],
        stop: asyncio.Event,
        *,
        stale_after: float | None = None,
    ) -> asyncio.Task[None]:
        """Run ``run()`` as the task ``name`` until ``stop`` is set, restarting it whenever it
        fails. The asyncio task ends once ``stop`` is set and ``run()`` has returned (or
        failed)."""
        state = TaskState(name, stale_after, self.telemetry)
        self._states[name] = state
        return asyncio.create_task(self._keep(state, run, stop), name=f"mailflow:{name}")

    def states(self) -> list[TaskState]:
        """Every task started so far, by name."""
        return [self._states[name] for name in sorted(self._states)]

    def _delay(self, state: TaskState) -> float:
        return min(self.max_delay, self.first_delay * 2.0 ** max(state.failures_in_a_row - 1, 0))

    async def _keep(
        self, state: TaskState, run: Callable[[], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        _current.set(state)  # this asyncio task's own context
        while True:
            state.running()
            try:
                await run()
            except asyncio.CancelledError:
                state.stopped()
                raise
            except Exception as exc:
                state.failed(f"{type(exc).__name__}: {exc}")
                if stop.is_set():
                    log.error("task %s failed while stopping", state.name, exc_info=True)
                    return
                delay = self._delay(state)
                log.error("task %s failed, restarting in %.1f s", state.name, delay, exc_info=True)
            else:
                if stop.is_set():
                    state.stopped()
                    return
                state.failed("ended by itself")
                delay = self._delay(state)
                log.error("task %s ended by itself, restarting in %.1f s", state.name, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
            state.restarting()
            log.info("task %s restarting (restart %d)", state.name, state.restarts)
