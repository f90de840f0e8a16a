"""What each transition does to a sale's payment (docs/states.md#money).

``authorized`` at order time, ``captured`` on accept, ``released`` on refuse or expire,
``refunded`` on cancel or withdraw after capture. A seller cancellation voids the payout and
still charges the commission; a withdrawal charges none.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from mailflow.domain.sales import Action

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class PaymentState(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    RELEASED = "released"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class Money:
    """A sale's money lines after a transition."""

    state: PaymentState
    amount: Decimal
    refunded: Decimal
    commission: Decimal
    payout: Decimal


def to_cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value(rounding=ROUND_HALF_UP))


def from_cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2).quantize(CENT)


def commission_on(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)


def authorize(amount: Decimal) -> Money:
    return Money(PaymentState.AUTHORIZED, amount, ZERO, ZERO, ZERO)


def settle(action: Action, money: Money, commission_rate: Decimal) -> Money:
    """The payment after ``action``; actions that move no money return it unchanged."""
    amount = money.amount
    match action:
        case Action.ACCEPT:
            commission = commission_on(amount, commission_rate)
            return Money(PaymentState.CAPTURED, amount, ZERO, commission, amount - commission)
        case Action.REFUSE | Action.EXPIRE:
            return Money(PaymentState.RELEASED, amount, ZERO, ZERO, ZERO)
        case Action.CANCEL:
            # The buyer gets everything back, the seller's payout is voided, and the
            # commission is still charged: the seller guide's cost of cancelling.
            commission = commission_on(amount, commission_rate)
            return Money(PaymentState.REFUNDED, amount, amount, commission, ZERO)
        case Action.WITHDRAW:
            if money.state is PaymentState.CAPTURED:
                return Money(PaymentState.REFUNDED, amount, amount, ZERO, ZERO)
            return Money(PaymentState.RELEASED, amount, ZERO, ZERO, ZERO)
        case _:
            return money
