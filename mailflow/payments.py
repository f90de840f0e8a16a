"""The payment gateway: what the workflow asks of the money side, and the built-in ledger.

The services decide the money (``domain.money``); a gateway carries it out. It is called
inside the transaction of the state change, so it must only record what is to happen: the
built-in ``Ledger`` writes one entry per movement; a gateway for a real payment provider would
record provider jobs in the same transaction and run them from a worker, as the outbox does
for email, so a provider outage never loses a refund.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from sqlalchemy import insert
from sqlmodel import Session

from mailflow.domain.money import Money, PaymentState, to_cents
from mailflow.store import _direct as direct
from mailflow.store.models import LedgerEntry

_INSERT_ENTRIES = insert(LedgerEntry.__table__)


class PaymentGateway(Protocol):
    def settle(
        self,
        session: Session,
        sale_id: int,
        before: Money,
        after: Money,
        currency: str,
        at: datetime,
    ) -> None:
        """Carry out the change from ``before`` to ``after`` for one sale."""


class Ledger:
    """Records each movement as a ledger entry: capture, release, refund, commission, payout."""

    def settle(
        self,
        session: Session,
        sale_id: int,
        before: Money,
        after: Money,
        currency: str,
        at: datetime,
    ) -> None:
        entries: list[tuple[str, Decimal]] = []
        if after.state is not before.state:
            match after.state:
                case PaymentState.CAPTURED:
                    entries.append(("capture", after.amount))
                case PaymentState.RELEASED:
                    entries.append(("release", after.amount))
                case PaymentState.REFUNDED:
                    entries.append(("refund", after.refunded))
        if after.commission != before.commission:
            entries.append(("commission", after.commission - before.commission))
        if after.payout != before.payout:
            kind = "payout" if after.payout > before.payout else "payout_void"
            entries.append((kind, after.payout - before.payout))
        if entries:
            direct.connection(session).executemany(
                _INSERT_ENTRIES,
                [
                    {
                        "sale_id": sale_id,
                        "kind": kind,
                        "amount_cents": to_cents(amount),
                        "currency": currency,
                        "at": at,
                    }
                    for kind, amount in entries
                ],
            )
