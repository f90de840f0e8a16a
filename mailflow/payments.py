"""The payment gateway: what the workflow asks of the money side, and the built-in ledger.

The services decide the money (``domain.money``); a gateway carries it out. It is called
inside the transaction of the state change, so it must only record what is to happen: the
built-in ``Ledger`` writes one entry per movement; a gateway for a real payment provider would
record provider jobs in the same transaction and run them from a worker, as the outbox does
for email, so a provider outage never loses a refund.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from mailflow.domain.money import Money, PaymentState, to_cents
from mailflow.store import ledger
from mailflow.store.database import Transaction


@dataclass(frozen=True, slots=True)
class Settlement:
    """One sale's money going from ``before`` to ``after`` at ``at``."""

    sale_id: int
    before: Money
    after: Money
    currency: str
    at: datetime


class PaymentGateway(Protocol):
    def settle(self, session: Transaction, settlement: Settlement) -> None:
        """Carry out ``settlement`` in the transaction of the change that caused it."""


class Ledger:
    """Records each movement as a ledger entry: capture, release, refund, commission, payout."""

    def settle(self, session: Transaction, settlement: Settlement) -> None:
        before, after = settlement.before, settlement.after
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
        ledger.add(
            session,
            [
                ledger.Entry(
                    settlement.sale_id, kind, to_cents(amount), settlement.currency, settlement.at
                )
                for kind, amount in entries
            ],
        )
