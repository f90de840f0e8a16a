"""The sale state machine of docs/states.md, pure."""

from __future__ import annotations

import pytest

from mailflow.domain.sales import (
    Action,
    AlreadyDone,
    IllegalTransition,
    SaleStatus,
    allowed_actions,
    plan,
)

P, A, R, S = SaleStatus.PENDING, SaleStatus.ACCEPTED, SaleStatus.REFUSED, SaleStatus.SHIPPED
C, W, E = SaleStatus.CANCELLED, SaleStatus.WITHDRAWN, SaleStatus.EXPIRED

LEGAL = {
    (Action.ACCEPT, P): A,
    (Action.REFUSE, P): R,
    (Action.EXPIRE, P): E,
    (Action.WITHDRAW, P): W,
    (Action.SHIP, A): S,
    (Action.CANCEL, A): C,
    (Action.WITHDRAW, A): W,
}


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("status", list(SaleStatus))
def test_every_pair_is_legal_already_done_or_illegal(action: Action, status: SaleStatus) -> None:
    if (action, status) in LEGAL:
        step = plan(action, status)
        assert (step.source, step.target) == (status, LEGAL[(action, status)])
    elif status == {a: t for (a, _), t in LEGAL.items()}[action]:
        with pytest.raises(AlreadyDone):
            plan(action, status)
    else:
        with pytest.raises(IllegalTransition) as info:
            plan(action, status)
        assert info.value.status == status and info.value.action == action


def test_refusing_an_accepted_sale_is_illegal_not_already_done() -> None:
    with pytest.raises(IllegalTransition):
        plan(Action.REFUSE, A)


def test_already_done_is_not_an_illegal_transition() -> None:
    with pytest.raises(AlreadyDone):
        plan(Action.REFUSE, R)
    assert not issubclass(AlreadyDone, IllegalTransition)


def test_allowed_actions() -> None:
    assert set(allowed_actions(P)) == {Action.ACCEPT, Action.REFUSE, Action.EXPIRE, Action.WITHDRAW}
    assert set(allowed_actions(A)) == {Action.SHIP, Action.CANCEL, Action.WITHDRAW}
    for closed in (R, S, C, W, E):
        assert allowed_actions(closed) == []
