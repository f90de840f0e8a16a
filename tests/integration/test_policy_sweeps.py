"""Incremental policy sweeps: a rate that moves only because the window slides is caught."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailflow.bootstrap import System
from mailflow.services import policy
from mailflow.store.models import OutboxMessage, Seller
from tests import factories
from tests.support import MovableClock


def _tier(system: System, seller_id: int) -> str:
    with system.db.read() as session:
        seller = session.get(Seller, seller_id)
        assert seller is not None
        return seller.tier


def _alerts(system: System) -> int:
    with system.db.read() as session:
        return session.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.template == "seller_rate_alert")
        ).scalar_one()


class TestIncrementalSweep:
    def test_sliding_window_moves_a_seller_without_any_event(
        self,
        db_url: str,
        make_system: Callable[..., System],
        api: TestClient,
        clock: MovableClock,
    ) -> None:
        system = make_system(db_url, policy={"min_sales": 5, "window_days": 30})
        seller = factories.seller(api)["id"]
        for _ in range(40):
            factories.order(api, seller)
        clock.advance(days=20)
        recent = [factories.order(api, seller)["sales"][0]["id"] for _ in range(10)]
        api.post(f"/api/v1/sales/{recent[0]}/accept")
        api.post(f"/api/v1/sales/{recent[0]}/cancel", json={"reason": "other"})
        # 1 cancelled of 50: ok. The first sweep is a full recount and remembers the window.
        clock.advance(days=5)
        assert policy.evaluate_all(system.services) == 0
        assert system.services.sweep_memory.incremental_sweeps == 0
        assert _tier(system, seller) == "ok"

        # Day 31: the 40 old sales left the window; 1 of 10 is over 5 %, and no event said so.
        clock.advance(days=6)
        assert policy.evaluate_all(system.services) == 1
        assert system.services.sweep_memory.incremental_sweeps == 1
        assert _tier(system, seller) == "over"
        assert _alerts(system) == 1
        assert policy.evaluate_all(system.services) == 0
        assert _alerts(system) == 1

    def test_full_sweep_after_the_set_number_of_incremental_ones(
        self, db_url: str, make_system: Callable[..., System], clock: MovableClock
    ) -> None:
        system = make_system(db_url)
        for _ in range(policy.FULL_SWEEP_EVERY + 1):
            policy.evaluate_all(system.services)
            clock.advance(minutes=1)
        assert system.services.sweep_memory.incremental_sweeps == policy.FULL_SWEEP_EVERY
        policy.evaluate_all(system.services)
        assert system.services.sweep_memory.incremental_sweeps == 0
