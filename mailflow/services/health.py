"""Whether the system can serve: ``/readyz``'s checks, and the errors that mean "try again
shortly"."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from mailflow.services.context import ServiceContext
from mailflow.store import health
from mailflow.supervisor import TaskState

DATABASE_UNAVAILABLE = health.UNAVAILABLE
"""What any service call raises when the database is out of reach or out of connections;
nothing was changed (the transaction did not commit)."""


@dataclass(frozen=True)
class Check:
    """One thing ``/readyz`` looks at: ``database``, ``schema`` or ``task:<name>``."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class TaskReport:
    """A supervised task as ``/readyz`` shows it."""

    name: str
    up: bool
    restarts: int
    last_success_seconds_ago: float | None
    last_error: str | None
    problem: str | None


@dataclass(frozen=True)
class Readiness:
    checks: tuple[Check, ...]
    tasks: tuple[TaskReport, ...]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _database(ctx: ServiceContext) -> list[Check]:
    try:
        with ctx.db.read() as tx:
            health.ping(tx)
            behind = health.schema_behind(tx)
    except DATABASE_UNAVAILABLE as exc:
        return [
            Check("database", False, f"unreachable: {_one_line(exc)}"),
            Check("schema", False, "unknown while the database is unreachable"),
        ]
    schema = Check("schema", behind is None, behind or "current")
    return [Check("database", True, "reachable"), schema]


def readiness(ctx: ServiceContext, tasks: Iterable[TaskState]) -> Readiness:
    """The database answers, its schema is current, and every supervised task of this process
    runs and (where it must) has succeeded lately."""
    now = time.time()
    checks = _database(ctx)
    reports = []
    for state in tasks:
        problem = state.problem(now)
        checks.append(Check(f"task:{state.name}", problem is None, problem or "running"))
        ago = None if state.last_success is None else round(max(0.0, now - state.last_success), 3)
        reports.append(
            TaskReport(state.name, state.up, state.restarts, ago, state.last_error, problem)
        )
    return Readiness(tuple(checks), tuple(reports))
