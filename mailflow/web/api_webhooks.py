"""The webhooks API, ``/api/v1/webhooks``: endpoints, their secret, deliveries, replay.

A secret is shown once, in the answer that made it (creation, rotation). See docs/webhooks.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from mailflow.services import webhooks
from mailflow.web.auth import Authenticated
from mailflow.web.deps import IdPath, ServicesDep
from mailflow.web.responses import API_ERRORS, errors

CONFLICT = errors(409)
"""Replaying a delivery to a disabled endpoint (``endpoint_disabled``)."""

router = APIRouter(
    prefix="/api/v1/webhooks",
    dependencies=[Authenticated],
    tags=["webhooks"],
    responses=errors(*API_ERRORS, 404),
)


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, examples=["https://market.example/hooks"])
    events: list[
        Annotated[
            str,
            Field(min_length=1, max_length=40),
            WithJsonSchema({"type": "string", "enum": ["*", *sorted(webhooks.EVENT_TYPES)]}),
        ]
    ] = Field(
        min_length=1, max_length=webhooks.MAX_EVENTS, examples=[["sale.refused", "sale.expired"]]
    )
    description: str = Field(default="", max_length=500)


class EndpointOut(BaseModel):
    id: int
    url: str
    description: str
    events: list[str]
    active: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    previous_secret_until: datetime | None
    """While set, the secret before the last rotation signs too."""
    created_at: datetime


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="The signing secret (`whsec_…`), shown only this once.")


class AttemptOut(BaseModel):
    at: datetime
    outcome: str = Field(description="`delivered`, `retry`, `failed` (given up) or `gone` (410).")
    status_code: int | None
    duration_ms: int
    error: str | None
    response: str = Field(description="The first 2 KB of the endpoint's answer.")


class DeliveryOut(BaseModel):
    id: int
    endpoint_id: int
    event_id: str = Field(description="The event's id, sent as `webhook-id` on every attempt.")
    type: str
    sequence: int
    status: str = Field(description="`queued`, `delivered` or `failed` (given up).")
    attempt_count: int
    next_attempt_at: datetime | None
    queued_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    payload: dict[str, Any]
    attempts: list[AttemptOut]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EndpointWithSecret)
def create_webhook(data: WebhookIn, services: ServicesDep) -> dict[str, Any]:
    """Register an endpoint; the answer carries its secret, shown only this once."""
    made = webhooks.create_endpoint(services, data.url, data.events, data.description)
    return {**made.endpoint, "secret": made.secret}


@router.get("", response_model=list[EndpointOut])
def list_webhooks(services: ServicesDep) -> list[dict[str, Any]]:
    return webhooks.list_endpoints(services)


@router.get("/{endpoint_id}", response_model=EndpointOut)
def get_webhook(endpoint_id: IdPath, services: ServicesDep) -> dict[str, Any]:
    return webhooks.get_endpoint(services, endpoint_id)


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(endpoint_id: IdPath, services: ServicesDep) -> Response:
    """The endpoint and its deliveries; nothing more is sent to it."""
    webhooks.delete_endpoint(services, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{endpoint_id}/rotate-secret", response_model=EndpointWithSecret)
def rotate_secret(endpoint_id: IdPath, services: ServicesDep) -> dict[str, Any]:
    """A new secret, shown once; the old one keeps signing beside it (both signatures are
    sent) until ``previous_secret_until`` (``[webhooks] secret_overlap_hours``)."""
    made = webhooks.rotate_secret(services, endpoint_id)
    return {**made.endpoint, "secret": made.secret}


@router.post("/{endpoint_id}/enable", response_model=EndpointOut)
def enable_webhook(endpoint_id: IdPath, services: ServicesDep) -> dict[str, Any]:
    """Enable an endpoint that was disabled (410, failing too long, by hand): its waiting
    deliveries go out again."""
    return webhooks.set_enabled(services, endpoint_id, True)


@router.get("/{endpoint_id}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    endpoint_id: IdPath,
    services: ServicesDep,
    status: Annotated[Literal["queued", "delivered", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """The endpoint's newest deliveries, each with every attempt."""
    return webhooks.deliveries_of(services, endpoint_id, status=status, limit=limit)


@router.post("/deliveries/{delivery_id}/replay", response_model=DeliveryOut, responses=CONFLICT)
def replay_delivery(delivery_id: IdPath, services: ServicesDep) -> dict[str, Any]:
    """Send the delivery again, now: the same event, the same ``webhook-id``."""
    return webhooks.replay(services, delivery_id)
