"""The suppression list and the received messages, as the API and the console read them;
lifting a suppression (the held mail goes out again)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from mailflow.services.context import ServiceContext
from mailflow.services.errors import NotFound
from mailflow.store import inbound as received_store
from mailflow.store import outbox as outbox_store
from mailflow.store import suppressions as store
from mailflow.store.inbound import ReceivedRecord
from mailflow.store.outbox import SaleEmail
from mailflow.store.suppressions import SuppressionRecord

__all__ = [
    "Listing",
    "ReceivedRecord",
    "SaleEmail",
    "SuppressionRecord",
    "lift",
    "list_received",
    "list_suppressions",
    "received_message",
    "sale_emails",
    "suppression_of",
]

Row = TypeVar("Row")


@dataclass(frozen=True)
class Listing(Generic[Row]):
    rows: list[Row]
    total: int


def list_suppressions(
    ctx: ServiceContext, *, limit: int, offset: int = 0
) -> Listing[SuppressionRecord]:
    with ctx.db.read() as tx:
        return Listing(store.listing(tx, limit=limit, offset=offset), store.count(tx))


def suppression_of(ctx: ServiceContext, email: str) -> SuppressionRecord | None:
    """The address's suppression, if it is on the list (a seller shown unreachable)."""
    with ctx.db.read() as tx:
        return store.get(tx, email)


def lift(ctx: ServiceContext, email: str) -> int:
    """Take ``email`` off the list; the mail held for it is queued again. How many emails
    were; ``NotFound`` when the address is not on the list."""
    with ctx.db.transaction() as tx:
        requeued = store.lift(tx, email, ctx.clock())
    if requeued is None:
        raise NotFound(f"{store.fold(email)} is not on the suppression list")
    return requeued


def list_received(
    ctx: ServiceContext, *, limit: int, offset: int = 0, kind: str | None = None
) -> Listing[ReceivedRecord]:
    with ctx.db.read() as tx:
        rows = received_store.listing(tx, limit=limit, offset=offset, kind=kind)
        return Listing(rows, received_store.count(tx, kind=kind))


def received_message(ctx: ServiceContext, row_id: int) -> ReceivedRecord:
    with ctx.db.read() as tx:
        found = received_store.get(tx, row_id) if 0 < row_id < 2**63 else None
    if found is None:
        raise NotFound(f"no received message {row_id}")
    return found


def sale_emails(ctx: ServiceContext, sale_id: int) -> list[SaleEmail]:
    with ctx.db.read() as tx:
        return outbox_store.of_sale(tx, sale_id)
