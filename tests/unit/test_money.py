"""Payment states and money lines per transition (docs/states.md#money)."""

from __future__ import annotations

from decimal import Decimal

from mailflow.domain.money import PaymentState, authorize, commission_on, settle
from mailflow.domain.sales import Action

RATE = Decimal("0.10")


def test_accept_captures_and_computes_payout() -> None:
    money = settle(Action.ACCEPT, authorize(Decimal("12.50")), RATE)
    assert money.state is PaymentState.CAPTURED
    assert money.commission == Decimal("1.25")
    assert money.payout == Decimal("11.25")


def test_refuse_and_expire_release_without_charges() -> None:
    for action in (Action.REFUSE, Action.EXPIRE):
        money = settle(action, authorize(Decimal("9.99")), RATE)
        assert money.state is PaymentState.RELEASED
        assert money.commission == money.payout == money.refunded == Decimal("0")


def test_cancel_refunds_voids_payout_and_keeps_commission() -> None:
    accepted = settle(Action.ACCEPT, authorize(Decimal("20.00")), RATE)
    money = settle(Action.CANCEL, accepted, RATE)
    assert money.state is PaymentState.REFUNDED
    assert money.refunded == Decimal("20.00")
    assert money.payout == Decimal("0")
    assert money.commission == Decimal("2.00")


def test_withdrawal_refunds_after_capture_and_charges_no_commission() -> None:
    accepted = settle(Action.ACCEPT, authorize(Decimal("20.00")), RATE)
    money = settle(Action.WITHDRAW, accepted, RATE)
    assert money.state is PaymentState.REFUNDED
    assert money.refunded == Decimal("20.00")
    assert money.commission == money.payout == Decimal("0")


def test_withdrawal_before_capture_releases() -> None:
    money = settle(Action.WITHDRAW, authorize(Decimal("20.00")), RATE)
    assert money.state is PaymentState.RELEASED
    assert money.refunded == Decimal("0")


def test_ship_moves_no_money() -> None:
    accepted = settle(Action.ACCEPT, authorize(Decimal("20.00")), RATE)
    assert settle(Action.SHIP, accepted, RATE) == accepted


def test_commission_rounds_half_up_to_the_cent() -> None:
    assert commission_on(Decimal("0.05"), RATE) == Decimal("0.01")
    assert commission_on(Decimal("0.04"), RATE) == Decimal("0.00")
