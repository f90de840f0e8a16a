"""The suppression list, ``/api/v1/suppressions``: addresses mail is not sent to (hard
bounces). Listing it, and lifting one address (the mail held for it is sent)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from mailflow.schemas import Email
from mailflow.services import suppressions
from mailflow.web.auth import Authenticated
from mailflow.web.deps import ServicesDep
from mailflow.web.responses import API_ERRORS, errors

router = APIRouter(
    prefix="/api/v1/suppressions",
    dependencies=[Authenticated],
    tags=["suppressions"],
    responses=errors(*API_ERRORS),
)


class SuppressionOut(BaseModel):
    email: str
    reason: str
    """``hard_bounce``: a delivery status notification said the address does not exist."""
    detail: str
    """The bounce's status code and diagnostic."""
    outbox_id: int | None
    """The email whose bounce put the address on the list."""
    created_at: datetime


class SuppressionsOut(BaseModel):
    suppressions: list[SuppressionOut]
    total: int


class LiftedOut(BaseModel):
    email: str
    requeued: int
    """How many held emails were queued again."""


@router.get(
    "",
    response_model=SuppressionsOut,
)
def list_suppressions(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> SuppressionsOut:
    """The suppressed addresses, newest first."""
    listing = suppressions.list_suppressions(services, limit=limit, offset=offset)
    return SuppressionsOut(
        suppressions=[
            SuppressionOut(
                email=row.email,
                reason=row.reason,
                detail=row.detail,
                outbox_id=row.outbox_id,
                created_at=row.created_at,
            )
            for row in listing.rows
        ],
        total=listing.total,
    )


@router.delete(
    "/{email}",
    response_model=LiftedOut,
    responses=errors(404),
)
def lift_suppression(email: Annotated[Email, Path()], services: ServicesDep) -> LiftedOut:
    """Take the address off the list; the emails held for it are queued again."""
    requeued = suppressions.lift(services, email)
    return LiftedOut(email=email.lower(), requeued=requeued)
