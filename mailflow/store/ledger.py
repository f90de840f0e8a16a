"""The ledger: one row per money movement of a sale (capture, release, refund, commission,
payout and its void), written in the transaction of the state change that caused it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert

from mailflow.store import _direct as direct
from mailflow.store.database import Transaction
from mailflow.store.models import LedgerEntry, table

_INSERT_ENTRIES = insert(table(LedgerEntry))


@dataclass(frozen=True, slots=True)
class Entry:
    sale_id: int
    kind: str
    amount_cents: int
    currency: str
    at: datetime


def add(tx: Transaction, entries: list[Entry]) -> None:
    """Write ``entries`` in ``tx`` (one executemany)."""
    if entries:
        direct.connection(tx).executemany(
            _INSERT_ENTRIES,
            [
                {
                    "sale_id": e.sale_id,
                    "kind": e.kind,
                    "amount_cents": e.amount_cents,
                    "currency": e.currency,
                    "at": e.at,
                }
                for e in entries
            ],
        )
