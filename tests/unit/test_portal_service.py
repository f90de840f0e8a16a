"""The seller's rate over time, over an in-memory history: one point a day, each sale counted
in the state it was in at that point, within the rolling window ending there."""

from __future__ import annotations

from datetime import timedelta

from mailflow.config import PolicySettings
from mailflow.services import portal
from tests.fakes_reads import FakeHistory, context
from tests.support import MovableClock

SELLER, OTHER = 3, 4


class TestRateHistory:
    def setup_method(self) -> None:
        self.clock = MovableClock()
        self.history = FakeHistory()
        self.ctx = context(clock=self.clock, history=self.history)
        self.now = self.clock.now

    def test_a_cancellation_moves_the_rate_from_its_day_on_only(self) -> None:
        for sale_id in range(1, 5):
            self.history.add_sale(SELLER, sale_id, self.now - timedelta(days=20))
            self.history.change(sale_id, self.now - timedelta(days=19), "accepted")
        self.history.change(1, self.now - timedelta(days=10, hours=1), "cancelled")

        points = portal.rate_history(self.ctx, SELLER, days=15)
        assert len(points) == 15
        assert points[-1]["at"] == self.now
        assert points[0]["at"] == self.now - timedelta(days=14)
        before = [p for p in points if p["at"] < self.now - timedelta(days=10, hours=1)]
        after = [p for p in points if p["at"] >= self.now - timedelta(days=10)]
        assert {(p["rate"], p["against"], p["counted"]) for p in before} == {(0.0, 0, 4)}
        assert {(p["rate"], p["against"], p["counted"]) for p in after} == {(0.25, 1, 4)}

    def test_sales_leave_the_window_and_other_sellers_do_not_count(self) -> None:
        self.history.add_sale(SELLER, 1, self.now - timedelta(days=35))
        self.history.change(1, self.now - timedelta(days=34), "cancelled")
        self.history.add_sale(OTHER, 2, self.now - timedelta(days=2))
        self.history.change(2, self.now - timedelta(days=1), "cancelled")

        points = portal.rate_history(self.ctx, SELLER, days=10)
        # Created 35 days ago: in the 30-day window of the points up to 5 days ago.
        in_window = [p for p in points if p["at"] <= self.now - timedelta(days=5)]
        out_of_window = [p for p in points if p["at"] > self.now - timedelta(days=5)]
        assert {(p["counted"], p["against"]) for p in in_window} == {(1, 1)}
        assert {(p["counted"], p["against"]) for p in out_of_window} == {(0, 0)}
        assert {p["rate"] for p in out_of_window} == {0.0}

    def test_withdrawals_are_not_counted_and_refusals_only_if_the_policy_says(self) -> None:
        for sale_id, status in enumerate(("withdrawn", "refused", "expired", "accepted"), 1):
            self.history.add_sale(SELLER, sale_id, self.now - timedelta(days=3))
            self.history.change(sale_id, self.now - timedelta(days=2), status)

        [today] = portal.rate_history(self.ctx, SELLER, days=1)
        assert (today["counted"], today["against"], today["rate"]) == (3, 0, 0.0)

        strict = context(
            clock=self.clock, history=self.history, policy=PolicySettings(count_refusals=True)
        )
        [today] = portal.rate_history(strict, SELLER, days=1)
        assert (today["counted"], today["against"]) == (3, 2)
        assert today["rate"] == 2 / 3

    def test_a_sale_still_pending_counts_as_pending(self) -> None:
        self.history.add_sale(SELLER, 1, self.now - timedelta(hours=1))
        [today] = portal.rate_history(self.ctx, SELLER, days=1)
        assert (today["counted"], today["against"]) == (1, 0)
