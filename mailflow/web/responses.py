"""mailflow's error answers, as the OpenAPI document states them.

Every JSON route documents the error bodies mailflow really sends (``web.app``'s handlers),
not FastAPI's defaults. A router or a route takes them with one argument::

    router = APIRouter(prefix="/api/v1/x", responses=errors(400, 401, 413, 422))

    @router.get("/{x_id}", responses=errors(404))
    @router.post("/{x_id}/go", responses=errors(404, 409))

``API_ERRORS`` (400, 401, 413, 422) are the answers any ``/api/v1`` route may give; a route
adds 404, 409 or 503 where they apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """An error: a stable code and a sentence for the developer."""

    error: str = Field(examples=["not_found"])
    message: str = Field(examples=["no sale 42"])


class MalformedOut(BaseModel):
    """``malformed_json``: the body is not JSON (or not UTF-8)."""

    error: str = Field(examples=["malformed_json"])
    message: str = Field(examples=["the request body is not valid JSON"])


class UnauthorizedOut(BaseModel):
    error: Literal["unauthorized"]
    message: str = Field(examples=["missing or wrong bearer token"])


class ConflictOut(BaseModel):
    """The request is impossible in the current state; ``status`` and ``hint`` say what is."""

    error: str = Field(examples=["illegal_transition"])
    message: str = Field(examples=["sale 42 is refused: it cannot be accepted"])
    status: str | None = Field(default=None, examples=["refused"])
    hint: str | None = Field(default=None, examples=["The sale is closed: nothing more to do."])


class TooLargeOut(BaseModel):
    error: Literal["too_large"]
    message: str = Field(
        examples=["the request body is larger than 1048576 bytes (server.max_body_bytes)"]
    )


class FieldProblem(BaseModel):
    field: str = Field(examples=["buyer.email"])
    message: str = Field(examples=["value is not a valid email address"])
    type: str = Field(examples=["value_error"])


class InvalidOut(BaseModel):
    """The request is well-formed JSON but a field is wrong: each one at fault."""

    error: Literal["invalid"]
    detail: list[FieldProblem]


class UnavailableOut(BaseModel):
    error: Literal["unavailable"]
    message: str = Field(examples=["the database is busy; retry shortly"])


_DOCS: dict[int, tuple[type[BaseModel], str]] = {
    400: (MalformedOut, "The body is not valid JSON (or not UTF-8)."),
    401: (UnauthorizedOut, "No bearer token, or one not in `[api] tokens`."),
    404: (ErrorOut, "Nothing has this id."),
    409: (ConflictOut, "Impossible in the current state: `status` and `hint` say why."),
    413: (TooLargeOut, "The body is larger than `[server] max_body_bytes`."),
    422: (InvalidOut, "A field is invalid: `detail` names each one."),
    503: (UnavailableOut, "The database is out of reach; nothing was done: retry."),
}
API_ERRORS = (400, 401, 413, 422)


Responses = dict[int | str, dict[str, Any]]


def errors(*statuses: int, extra: Mapping[int, Mapping[str, Any]] | None = None) -> Responses:
    """The ``responses=`` of a route or router: mailflow's body for each status given, and
    ``extra`` (other answers of the route, e.g. a 200 beside its 201) as they are."""
    docs: Responses = {
        status: {"model": _DOCS[status][0], "description": _DOCS[status][1]} for status in statuses
    }
    for status, doc in (extra or {}).items():
        docs[status] = dict(doc)
    return docs
