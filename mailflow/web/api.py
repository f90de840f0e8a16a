"""The JSON API, ``/api/v1``: sellers, orders, sales."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Response, status
from pydantic import BaseModel, ConfigDict

from mailflow.schemas import CancelIn, ListingIn, OrderIn, RefuseIn, SellerIn, WithdrawIn
from mailflow.services import listings, orders, policy, sales, sellers
from mailflow.services.actions import Action, Actor, Channel
from mailflow.web.api_models import (
    ListingOut,
    OrderOut,
    SaleChangeOut,
    SaleDetailOut,
    SellerOut,
    StatsOut,
)
from mailflow.web.auth import Authenticated
from mailflow.web.deps import IdPath, ServicesDep
from mailflow.web.responses import API_ERRORS, errors

router = APIRouter(prefix="/api/v1", dependencies=[Authenticated], responses=errors(*API_ERRORS))


class NoBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


@router.post(
    "/sellers",
    status_code=status.HTTP_201_CREATED,
    tags=["sellers"],
    responses=errors(
        409, extra={200: {"model": SellerOut, "description": "The same seller, sent again"}}
    ),
    response_model=SellerOut,
)
def create_seller(data: SellerIn, services: ServicesDep, response: Response) -> dict[str, Any]:
    """201 with the new seller; 200 with the existing one when the same seller (address,
    name, locale) is sent again; 409 ``seller_exists`` for the address with other details."""
    seller, created = sellers.add_seller(services, data)
    if not created:
        response.status_code = status.HTTP_200_OK
    return seller


@router.get(
    "/sellers/{seller_id}", tags=["sellers"], responses=errors(404), response_model=SellerOut
)
def get_seller(seller_id: IdPath, services: ServicesDep) -> dict[str, Any]:
    return sellers.get_seller(services, seller_id)


@router.get(
    "/sellers/{seller_id}/stats", tags=["sellers"], responses=errors(404), response_model=StatsOut
)
def seller_stats(seller_id: IdPath, services: ServicesDep) -> dict[str, Any]:
    """The seller's cancellation rate, tier, thresholds and the sales that count against it."""
    return policy.stats(services, seller_id)


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    tags=["orders"],
    responses=errors(
        404, 409, extra={200: {"model": OrderOut, "description": "The first result, sent again"}}
    ),
    response_model=OrderOut,
)
def create_order(
    data: OrderIn,
    services: ServicesDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> dict[str, Any]:
    result = orders.place_order(services, data, idempotency_key)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result.body


@router.get("/sales/{sale_id}", tags=["sales"], responses=errors(404), response_model=SaleDetailOut)
def get_sale(sale_id: IdPath, services: ServicesDep) -> dict[str, Any]:
    return sales.get_sale(services, sale_id)


_TRANSITION = errors(404, 409)


def _act(
    services: ServicesDep, sale_id: int, action: Action, actor: Actor = Actor.API, **kw: Any
) -> dict[str, Any]:
    outcome = sales.transition(services, sale_id, action, actor=actor, channel=Channel.API, **kw)
    return {**outcome.sale, "changed": outcome.changed}


@router.post(
    "/sales/{sale_id}/accept", tags=["sales"], responses=_TRANSITION, response_model=SaleChangeOut
)
def accept_sale(
    sale_id: IdPath, services: ServicesDep, _: Annotated[NoBody | None, Body()] = None
) -> dict[str, Any]:
    return _act(services, sale_id, Action.ACCEPT)


@router.post(
    "/sales/{sale_id}/refuse", tags=["sales"], responses=_TRANSITION, response_model=SaleChangeOut
)
def refuse_sale(
    sale_id: IdPath, services: ServicesDep, data: Annotated[RefuseIn | None, Body()] = None
) -> dict[str, Any]:
    reason = (data or RefuseIn()).reason
    return _act(services, sale_id, Action.REFUSE, reason=reason)


@router.post(
    "/sales/{sale_id}/ship", tags=["sales"], responses=_TRANSITION, response_model=SaleChangeOut
)
def ship_sale(
    sale_id: IdPath, services: ServicesDep, _: Annotated[NoBody | None, Body()] = None
) -> dict[str, Any]:
    return _act(services, sale_id, Action.SHIP)


@router.post(
    "/sales/{sale_id}/cancel", tags=["sales"], responses=_TRANSITION, response_model=SaleChangeOut
)
def cancel_sale(sale_id: IdPath, services: ServicesDep, data: CancelIn) -> dict[str, Any]:
    """Cancel an accepted sale: the buyer is refunded and told the seller's reason and message."""
    return _act(services, sale_id, Action.CANCEL, reason=data.reason, message=data.message)


@router.post(
    "/sales/{sale_id}/withdraw", tags=["sales"], responses=_TRANSITION, response_model=SaleChangeOut
)
def withdraw_sale(
    sale_id: IdPath, services: ServicesDep, data: Annotated[WithdrawIn | None, Body()] = None
) -> dict[str, Any]:
    """Record a buyer's withdrawal (customer service): never counts in the seller's rate."""
    note = (data or WithdrawIn()).note or None
    return _act(services, sale_id, Action.WITHDRAW, actor=Actor.SUPPORT, note=note)


SkuPath = Annotated[str, Path(min_length=1, max_length=100)]


@router.get(
    "/sellers/{seller_id}/listings/{sku}",
    tags=["listings"],
    responses=errors(404),
    response_model=ListingOut,
)
def get_listing(seller_id: IdPath, sku: SkuPath, services: ServicesDep) -> dict[str, Any]:
    return listings.get_listing(services, seller_id, sku)


@router.put(
    "/sellers/{seller_id}/listings/{sku}",
    tags=["listings"],
    responses=errors(404),
    response_model=ListingOut,
)
def put_listing(
    seller_id: IdPath, sku: SkuPath, data: ListingIn, services: ServicesDep
) -> dict[str, Any]:
    return listings.update_listing(services, seller_id, sku, data)
