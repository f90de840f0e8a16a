"""``GET /readyz``: whether this process can do its work (database, schema, its tasks)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from mailflow.services import health
from mailflow.web.deps import SystemDep

router = APIRouter(tags=["ops"])


class CheckOut(BaseModel):
    name: str = Field(description="`database`, `schema` or `task:<name>`")
    ok: bool
    detail: str = Field(description="what is wrong, or `reachable` / `current` / `running`")


class TaskOut(BaseModel):
    name: str = Field(description="e.g. `delivery.claim`, `delivery.flusher`, `sweeper`")
    up: bool = Field(description="running now (false while it waits to be restarted)")
    restarts: int = Field(description="restarts after a failure since the process started")
    last_success_seconds_ago: float | None = Field(
        description="since its last successful round; null if it has had none yet"
    )
    last_error: str | None = Field(description="the last failure, if any")
    problem: str | None = Field(description="why it is not ready; null when it is")


class ReadyOut(BaseModel):
    status: str = Field(description="`ready` (200) or `unavailable` (503)")
    problems: list[str] = Field(description="`<check>: <detail>` for every failing check")
    checks: list[CheckOut]
    tasks: list[TaskOut] = Field(description="the supervised tasks this process runs")


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "something is wrong: see `problems`"}},
)
def readyz(system: SystemDep, response: Response) -> ReadyOut:
    """200 when the database answers, its schema is current and every supervised task of this
    process runs (and, for the claim loop, the sweeper and the wake-up, succeeded lately);
    503 with what is wrong otherwise. Needs no token."""
    ready = health.readiness(system.services, system.supervisor.states())
    if not ready.ready:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return ReadyOut(
        status="ready" if ready.ready else "unavailable",
        problems=[f"{c.name}: {c.detail}" for c in ready.checks if not c.ok],
        checks=[CheckOut(name=c.name, ok=c.ok, detail=c.detail) for c in ready.checks],
        tasks=[
            TaskOut(
                name=t.name,
                up=t.up,
                restarts=t.restarts,
                last_success_seconds_ago=t.last_success_seconds_ago,
                last_error=t.last_error,
                problem=t.problem,
            )
            for t in ready.tasks
        ],
    )
