"""The JSON API of a sale's conversation: ``GET /api/v1/sales/{id}/messages``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from mailflow.services import conversation
from mailflow.web.auth import Authenticated
from mailflow.web.deps import IdPath, ServicesDep
from mailflow.web.responses import API_ERRORS, errors

router = APIRouter(prefix="/api/v1", dependencies=[Authenticated])


class MessageOut(BaseModel):
    """One message of the sale's conversation."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    from_: Literal["seller", "buyer", "support"] = Field(
        alias="from", description="who wrote it (support: customer service)"
    )
    body: str = Field(description="the words, plain text (at most 10,000 characters)")
    received_at: datetime = Field(description="when it joined the conversation (UTC)")
    status: Literal["relayed", "command"] = Field(
        description="relayed: sent on by email to the other party; command: an email command "
        "(REFUSER, ACCEPTER…) carried out or answered, never sent on to the buyer"
    )
    channel: Literal["email", "portal", "console"] = Field(
        description="how it was written: a reply by email, the seller portal, the console"
    )


@router.get(
    "/sales/{sale_id}/messages",
    tags=["sales"],
    response_model=list[MessageOut],
    responses=errors(*API_ERRORS, 404),
)
def sale_messages(sale_id: IdPath, services: ServicesDep) -> list[MessageOut]:
    """The sale's conversation between its buyer, its seller and customer service, oldest
    first: replies by email (their new text only), what the seller wrote on the portal and
    what customer service wrote in the console."""
    return [
        MessageOut(
            id=m.id,
            from_=m.author,
            body=m.body,
            received_at=m.received_at,
            status=m.status,
            channel=m.channel,
        )
        for m in conversation.messages(services, sale_id)
    ]
