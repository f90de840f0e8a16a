"""The cancellation-rate policy (docs/policy.md) against a reference model written from the spec.

The reference below is written from docs/policy.md alone, with exact fractions for the rate and the
thresholds: it keeps a seller's sales (creation time, status), computes the rate over the
rolling window, and walks the tiers ok → warning → over → suspended, sending one email per
entry into a tier. Random sequences of events (new sales, cancellations, refusals, expiries,
withdrawals) and clock moves are played on it and on ``decide`` / ``tier_for`` /
``Counts.rate`` side by side, comparing at every evaluation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow.config import PolicySettings
from mailflow.domain.policy import Counts, Rules, Standing, Tier, decide, tier_for
from mailflow.services.policy import rules_of

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
DEFAULTS = PolicySettings()

# ---------------------------------------------------------------------------------------------
# The reference model
# ---------------------------------------------------------------------------------------------

LEVELS = ("ok", "warning", "over", "suspended")
ENTRY_EMAIL = {
    "warning": "seller_rate_warning",
    "over": "seller_rate_alert",
    "suspended": "seller_suspended",
}
REINSTATED = "seller_reinstated"
AGAINST = {"cancelled"}
AGAINST_WITH_REFUSALS = {"cancelled", "refused", "expired"}


def _days(value: float) -> timedelta:
    """A whole number of microseconds, computed from the decimal text of ``value``."""
    return timedelta(microseconds=int(Decimal(str(value)) * 86_400_000_000))


@dataclass
class RefPolicy:
    window_days: float = 30
    min_sales: int = 20
    threshold: str = "0.05"
    warning_ratio: str = "0.8"
    grace_days: float = 7
    suspension_days: float = 14
    count_refusals: bool = False

    def settings(self) -> PolicySettings:
        return PolicySettings(
            window_days=self.window_days,
            min_sales=self.min_sales,
            threshold=float(self.threshold),
            warning_ratio=float(self.warning_ratio),
            grace_days=self.grace_days,
            suspension_days=self.suspension_days,
            count_refusals=self.count_refusals,
        )


@dataclass
class RefSale:
    created: datetime
    status: str = "pending"


@dataclass
class RefSeller:
    """One seller as docs/policy.md describes it."""

    policy: RefPolicy
    sales: list[RefSale] = field(default_factory=list)
    tier: str = "ok"
    over_since: datetime | None = None  # when the alert went (grace runs from there)
    suspended_until: datetime | None = None

    # --- the rate -----------------------------------------------------------------------
    def in_window(self, now: datetime) -> list[RefSale]:
        start = now - _days(self.policy.window_days)
        return [s for s in self.sales if s.created >= start]

    def denominator(self, now: datetime) -> int:
        return sum(1 for s in self.in_window(now) if s.status != "withdrawn")

    def numerator(self, now: datetime) -> int:
        against = AGAINST_WITH_REFUSALS if self.policy.count_refusals else AGAINST
        return sum(1 for s in self.in_window(now) if s.status in against)

    def rate(self, now: datetime) -> Fraction:
        d = self.denominator(now)
        return Fraction(self.numerator(now), d) if d else Fraction(0)

    def level(self, now: datetime) -> str:
        """ok / warning / over from the rate alone."""
        if self.denominator(now) < self.policy.min_sales:
            return "ok"
        rate = self.rate(now)
        threshold = Fraction(self.policy.threshold)
        if rate >= threshold:
            return "over"
        if rate >= threshold * Fraction(self.policy.warning_ratio):
            return "warning"
        return "ok"

    # --- the tiers ----------------------------------------------------------------------
    def look(self, now: datetime) -> list[str]:
        """Evaluate at ``now``; the emails this sends."""
        sent: list[str] = []
        if self.tier == "suspended":
            assert self.suspended_until is not None
            if now < self.suspended_until:
                return sent
            sent.append(REINSTATED)
            self.tier, self.over_since, self.suspended_until = "ok", None, None
        level = self.level(now)
        if self.tier == "over" and level == "over":
            assert self.over_since is not None
            if now >= self.over_since + _days(self.policy.grace_days):
                self.tier = "suspended"
                self.suspended_until = now + _days(self.policy.suspension_days)
                self.over_since = None
                sent.append(ENTRY_EMAIL["suspended"])
            return sent
        if level != self.tier:
            if LEVELS.index(level) > LEVELS.index(self.tier):
                sent.append(ENTRY_EMAIL[level])
            self.tier = level
            self.over_since = now if level == "over" else None
        return sent

    # --- what the database would count (the input of ``decide``) -----------------------
    def counts(self, now: datetime) -> Counts:
        window = self.in_window(now)
        return Counts(
            total=len(window),
            cancelled=sum(1 for s in window if s.status == "cancelled"),
            refused=sum(1 for s in window if s.status in ("refused", "expired")),
            withdrawn=sum(1 for s in window if s.status == "withdrawn"),
        )


# ---------------------------------------------------------------------------------------------
# Driving both
# ---------------------------------------------------------------------------------------------

OPEN_FOR = {
    # which sales an event may pick, by status
    "cancel": ("pending", "accepted"),  # a pending one is accepted first (no evaluation)
    "refuse": ("pending",),
    "expire": ("pending",),
    "withdraw": ("pending", "accepted"),
}
TARGET = {"cancel": "cancelled", "refuse": "refused", "expire": "expired", "withdraw": "withdrawn"}


@dataclass
class Run:
    ref: RefSeller
    rules: Rules
    now: datetime = T0
    standing: Standing = field(default_factory=Standing)
    emails: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def evaluate(self, why: str) -> None:
        counts = self.ref.counts(self.now)
        expected_emails = self.ref.look(self.now)
        rate = self.ref.rate(self.now)
        where = (
            f"after {why} at +{self.now - T0}: counts={counts} rate={rate} history={self.log[-6:]}"
        )
        assert counts.counted == self.ref.denominator(self.now), where
        assert counts.rate(self.rules.count_refusals) == float(rate), where
        assert tier_for(counts, self.rules).value == self.ref.level(self.now), where
        decision = decide(self.standing, counts, self.rules, self.now)
        assert list(decision.emails) == expected_emails, where
        after = decision.standing
        assert after.tier.value == self.ref.tier, where
        assert after.suspended_until == self.ref.suspended_until, where
        if after.tier is Tier.OVER:
            assert after.since == self.ref.over_since, where
        assert decision.changed_from(self.standing) or not expected_emails, where
        self.standing = after
        self.emails.extend(decision.emails)
        self.log.append(f"{why}->{after.tier.value}{list(decision.emails)}")

    def grow_to_edges(self) -> None:
        """New sales until the rate is exactly the threshold, then exactly the warning start.

        Each edge is reached only when the current cancellations make it a whole number of
        sales away; the rate then crosses the edges from above, one sale at a time.
        """
        if self.ref.numerator(self.now) == 0:
            self.ref.sales.append(RefSale(self.now, "cancelled"))
            self.evaluate("new sale, cancelled")
        policy = self.ref.policy
        threshold = Fraction(policy.threshold)
        for edge in (threshold, threshold * Fraction(policy.warning_ratio)):
            counted = self.ref.denominator(self.now)
            wanted = self.ref.numerator(self.now) / edge
            if wanted.denominator != 1 or not 0 <= wanted - counted <= 100:
                continue
            for _ in range(int(wanted) - counted + 1):  # onto the edge, then one past it
                self.ref.sales.append(RefSale(self.now))
                self.evaluate(f"new sale (edge {edge})")

    def push_over(self) -> None:
        """Sales up to min_sales, then cancellations one by one until the rate is over."""
        ref = self.ref
        while ref.denominator(self.now) < ref.policy.min_sales:
            ref.sales.append(RefSale(self.now))
            self.evaluate("new sale (to min_sales)")
        for _ in range(60):
            open_ = [s for s in ref.sales if s.status in OPEN_FOR["cancel"]]
            if ref.level(self.now) == "over" or not open_:
                return
            open_[-1].status = "cancelled"
            self.evaluate("cancel (towards over)")

    def play(self, step: tuple[str, object]) -> None:
        kind, arg = step
        if kind == "sales":
            assert isinstance(arg, int)
            for _ in range(arg):
                self.ref.sales.append(RefSale(self.now))
                self.evaluate("new sale")
        elif kind == "wait":
            assert isinstance(arg, timedelta)
            self.now += arg
            self.evaluate(f"wait {arg}")  # the sweeper
        elif kind == "edges":
            self.grow_to_edges()
        elif kind == "push":
            self.push_over()
        elif kind == "deadline":
            # To the end of the grace or of the suspension (or a second short of it).
            assert isinstance(arg, timedelta)
            ref = self.ref
            if ref.tier == "over" and ref.over_since is not None:
                due = ref.over_since + _days(ref.policy.grace_days)
            elif ref.tier == "suspended" and ref.suspended_until is not None:
                due = ref.suspended_until
            else:
                return
            self.now = max(self.now, due + arg)
            self.evaluate(f"deadline {arg}")
        else:
            assert isinstance(arg, int)
            candidates = [s for s in self.ref.sales if s.status in OPEN_FOR[kind]]
            if not candidates:
                return
            candidates[arg % len(candidates)].status = TARGET[kind]
            self.evaluate(kind)


THRESHOLDS = ["0.02", "0.03", "0.05", "0.07", "0.1", "0.125", "0.2", "0.25", "0.3", "1"]
RATIOS = ["0.5", "0.6", "0.75", "0.8", "0.9", "1"]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[RefPolicy, list[tuple[str, object]]]:
    policy = RefPolicy(
        window_days=draw(st.sampled_from([0.5, 1, 2, 7, 30])),
        min_sales=draw(st.integers(0, 30)),
        threshold=draw(st.sampled_from(THRESHOLDS)),
        warning_ratio=draw(st.sampled_from(RATIOS)),
        grace_days=draw(st.sampled_from([0, 0.25, 0.5, 1, 7])),
        suspension_days=draw(st.sampled_from([0.25, 0.5, 1, 14])),
        count_refusals=draw(st.booleans()),
    )
    grace, suspension, window = (
        _days(policy.grace_days),
        _days(policy.suspension_days),
        _days(policy.window_days),
    )
    waits = st.one_of(
        st.sampled_from(
            [
                timedelta(0),
                timedelta(microseconds=1),
                SECOND,
                grace,
                max(grace - SECOND, timedelta(0)),
                suspension,
                suspension - SECOND,
                window,
                window + timedelta(microseconds=1),
            ]
        ),
        st.integers(1, 3 * 86_400).map(lambda s: timedelta(seconds=s)),
    )
    pick = st.integers(0, 10_000)
    deadline = st.tuples(st.just("deadline"), st.sampled_from([-SECOND, timedelta(0)]))
    step = st.one_of(
        st.tuples(st.just("sales"), st.integers(1, 25)),
        st.tuples(st.sampled_from(["cancel", "refuse", "expire", "withdraw"]), pick),
        st.tuples(st.just("wait"), waits),
        st.tuples(st.just("edges"), st.none()),
        st.tuples(st.just("push"), st.none()),
        deadline,
        deadline,  # twice as likely: the grace and the suspension need reaching
    )
    return policy, draw(st.lists(step, min_size=1, max_size=40))


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_decide_follows_the_reference_model(
    scenario: tuple[RefPolicy, list[tuple[str, object]]],
) -> None:
    policy, steps = scenario
    run = Run(RefSeller(policy), rules_of(policy.settings()))
    for step in steps:
        run.play(step)
    # Suspension only ever follows the alert (grace runs from it), and only reinstatement
    # follows a suspension.
    for a, b in itertools.pairwise(run.emails):
        if b == "seller_suspended":
            assert a == "seller_rate_alert", run.emails
        if a == "seller_suspended":
            assert b == "seller_reinstated", run.emails


@settings(max_examples=200, deadline=None)
@given(
    threshold=st.sampled_from(THRESHOLDS),
    ratio=st.sampled_from(RATIOS),
    against=st.integers(1, 40),
    count_refusals=st.booleans(),
    refused=st.integers(0, 3),
    withdrawn=st.integers(0, 3),
)
def test_tier_for_on_and_around_the_edges(
    threshold: str, ratio: str, against: int, count_refusals: bool, refused: int, withdrawn: int
) -> None:
    """Exactly at a bound is the higher tier; a sale more (the rate just under) is not."""
    policy = RefPolicy(
        min_sales=0, threshold=threshold, warning_ratio=ratio, count_refusals=count_refusals
    )
    rules = rules_of(policy.settings())
    if count_refusals:
        refused = min(refused, against)
    cancelled = against - refused if count_refusals else against
    for edge in (Fraction(threshold), Fraction(threshold) * Fraction(ratio)):
        on_edge = int(against / edge)  # the edge itself when it is a whole number of sales
        for counted in range(on_edge - 1, on_edge + 3):
            others = counted - cancelled - refused
            if others < 0:
                continue
            ref = RefSeller(policy)
            for status, n in (
                ("cancelled", cancelled),
                ("refused", refused),
                ("accepted", others),
                ("withdrawn", withdrawn),
            ):
                ref.sales += [RefSale(T0, status) for _ in range(n)]
            counts = ref.counts(T0)
            where = f"{counts}: {against}/{counted} against, edge {edge}"
            assert counts.counted == counted, where
            assert counts.rate(count_refusals) == float(ref.rate(T0)), where
            assert tier_for(counts, rules).value == ref.level(T0), where


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(0, 200),
    data=st.data(),
    count_refusals=st.booleans(),
)
def test_counts_rate_is_against_over_sales_less_withdrawals(
    total: int, data: st.DataObject, count_refusals: bool
) -> None:
    withdrawn = data.draw(st.integers(0, total))
    cancelled = data.draw(st.integers(0, total - withdrawn))
    refused = data.draw(st.integers(0, total - withdrawn - cancelled))
    counts = Counts(total=total, cancelled=cancelled, refused=refused, withdrawn=withdrawn)
    counted = total - withdrawn
    against = cancelled + (refused if count_refusals else 0)
    assert counts.counted == counted
    expected = Fraction(against, counted) if counted else Fraction(0)
    assert counts.rate(count_refusals) == float(expected)


# ---------------------------------------------------------------------------------------------
# Boundaries, as explicit examples (default policy unless said otherwise)
# ---------------------------------------------------------------------------------------------


def _rules(**overrides: object) -> Rules:
    return rules_of(DEFAULTS.model_copy(update=overrides))


def _counts(counted: int, cancelled: int = 0, **more: int) -> Counts:
    withdrawn = more.get("withdrawn", 0)
    return Counts(total=counted + withdrawn, cancelled=cancelled, **more)


class TestRateBoundaries:
    @pytest.mark.parametrize(
        ("cancelled", "counted", "threshold"),
        [(1, 20, 0.05), (3, 60, 0.05), (5, 100, 0.05), (1, 10, 0.1), (1, 8, 0.125), (7, 100, 0.07)],
    )
    def test_exactly_at_the_threshold_is_over(
        self, cancelled: int, counted: int, threshold: float
    ) -> None:
        rules = _rules(threshold=threshold, min_sales=1)
        assert tier_for(_counts(counted, cancelled), rules) is Tier.OVER

    def test_just_under_the_threshold_is_not_over(self) -> None:
        # 1/21 = 4.76 %: under 5 %, in the warning band (≥ 4 %).
        assert tier_for(_counts(21, 1), _rules()) is Tier.WARNING
        # 2/41 = 4.88 %
        assert tier_for(_counts(41, 2), _rules()) is Tier.WARNING

    @pytest.mark.parametrize(
        ("cancelled", "counted", "threshold", "ratio"),
        [
            (1, 25, 0.05, 0.8),  # 4 % = 5 % × 0.8
            (2, 50, 0.05, 0.8),
            (2, 25, 0.1, 0.8),  # 8 % = 10 % × 0.8
            (3, 40, 0.1, 0.75),  # 7.5 %
            (1, 2, 1.0, 0.5),
        ],
    )
    def test_exactly_at_the_start_of_the_warning_band_is_warning(
        self, cancelled: int, counted: int, threshold: float, ratio: float
    ) -> None:
        rules = _rules(threshold=threshold, warning_ratio=ratio, min_sales=1)
        assert tier_for(_counts(counted, cancelled), rules) is Tier.WARNING

    def test_just_under_the_warning_band_is_ok(self) -> None:
        assert tier_for(_counts(26, 1), _rules()) is Tier.OK  # 3.85 %

    def test_exactly_min_sales_is_judged_and_one_less_is_not(self) -> None:
        rules = _rules()
        assert tier_for(_counts(20, 1), rules) is Tier.OVER
        assert tier_for(_counts(19, 1), rules) is Tier.OK
        assert tier_for(_counts(19, 19), rules) is Tier.OK
        # The rate is still reported below min_sales.
        assert _counts(19, 1).rate(False) == 1 / 19
        # Withdrawals leave the denominator: 21 sales, 2 withdrawn → 19 counted.
        assert tier_for(_counts(19, 1, withdrawn=2), rules) is Tier.OK
        assert tier_for(_counts(20, 1, withdrawn=5), rules) is Tier.OVER

    def test_withdrawals_never_count_and_refusals_only_when_configured(self) -> None:
        withdrawn = Counts(total=25, withdrawn=5)
        assert withdrawn.rate(True) == withdrawn.rate(False) == 0.0
        refused = Counts(total=20, refused=1)
        assert refused.rate(False) == 0.0 and refused.rate(True) == 0.05
        assert tier_for(refused, _rules(count_refusals=False)) is Tier.OK
        assert tier_for(refused, _rules(count_refusals=True)) is Tier.OVER

    def test_no_sales_is_rate_zero(self) -> None:
        assert Counts().rate(False) == Counts().rate(True) == 0.0
        assert tier_for(Counts(), _rules(min_sales=0)) is Tier.OK


class TestTierBoundaries:
    OVER = _counts(20, 1)
    WARNING = _counts(22, 1)  # 4.5 %
    OK = _counts(20, 0)

    def test_entering_over_sends_the_alert_once(self) -> None:
        rules = _rules()
        first = decide(Standing(), self.OVER, rules, T0)
        assert first.standing == Standing(Tier.OVER, T0, None)
        assert first.emails == ("seller_rate_alert",)
        again = decide(first.standing, _counts(20, 2), rules, T0 + timedelta(days=1))
        assert again.emails == () and not again.changed_from(first.standing)

    def test_grace_exactly_elapsed_suspends_and_one_second_short_does_not(self) -> None:
        rules = _rules()
        over = Standing(Tier.OVER, T0, None)
        short = decide(over, self.OVER, rules, T0 + timedelta(days=7) - SECOND)
        assert short.standing == over and short.emails == ()
        now = T0 + timedelta(days=7)
        due = decide(over, self.OVER, rules, now)
        assert due.standing == Standing(Tier.SUSPENDED, now, now + timedelta(days=14))
        assert due.emails == ("seller_suspended",)
        still = decide(due.standing, self.OVER, rules, now + timedelta(days=1))
        assert still.emails == () and still.standing == due.standing

    def test_fractional_grace_and_suspension(self) -> None:
        rules = _rules(grace_days=0.5, suspension_days=1.25)
        over = Standing(Tier.OVER, T0, None)
        assert decide(over, self.OVER, rules, T0 + timedelta(hours=12) - SECOND).emails == ()
        due = decide(over, self.OVER, rules, T0 + timedelta(hours=12))
        assert due.standing.suspended_until == T0 + timedelta(hours=12 + 30)

    def test_back_under_the_threshold_before_grace_is_not_suspended(self) -> None:
        rules = _rules()
        over = Standing(Tier.OVER, T0, None)
        down = decide(over, self.WARNING, rules, T0 + timedelta(days=3))
        assert down.standing.tier is Tier.WARNING and down.emails == ()
        later = decide(down.standing, self.WARNING, rules, T0 + timedelta(days=30))
        assert later.standing.tier is Tier.WARNING and later.emails == ()

    def test_suspension_exactly_ended_reinstates_and_one_second_before_does_not(self) -> None:
        rules = _rules()
        until = T0 + timedelta(days=14)
        suspended = Standing(Tier.SUSPENDED, T0, until)
        before = decide(suspended, self.OK, rules, until - SECOND)
        assert before.standing == suspended and before.emails == ()
        ended = decide(suspended, self.OK, rules, until)
        assert ended.standing.tier is Tier.OK and ended.standing.suspended_until is None
        assert ended.emails == ("seller_reinstated",)
        # Still over when it ends: reinstated, then a new alert and a new grace period.
        relapse = decide(suspended, self.OVER, rules, until)
        assert relapse.emails == ("seller_reinstated", "seller_rate_alert")
        assert relapse.standing == Standing(Tier.OVER, until, None)

    def test_one_email_per_entry_into_a_tier(self) -> None:
        rules = _rules()
        path = [
            (self.WARNING, Tier.WARNING, ("seller_rate_warning",)),
            (_counts(23, 1), Tier.WARNING, ()),  # still in the band
            (self.OVER, Tier.OVER, ("seller_rate_alert",)),
            (_counts(20, 2), Tier.OVER, ()),
            (self.WARNING, Tier.WARNING, ()),  # going down sends nothing
            (self.OVER, Tier.OVER, ("seller_rate_alert",)),  # a new entry: a new alert
            (self.OK, Tier.OK, ()),
            (self.OVER, Tier.OVER, ("seller_rate_alert",)),  # from ok straight to over
        ]
        standing = Standing()
        now = T0
        for counts, tier, emails in path:
            now += timedelta(hours=1)
            decision = decide(standing, counts, rules, now)
            assert (decision.standing.tier, decision.emails) == (tier, emails), counts
            standing = decision.standing

    def test_re_entering_over_restarts_the_grace(self) -> None:
        rules = _rules()
        standing = decide(Standing(), self.OVER, rules, T0).standing
        standing = decide(standing, self.WARNING, rules, T0 + timedelta(days=5)).standing
        back = T0 + timedelta(days=6)
        standing = decide(standing, self.OVER, rules, back).standing
        assert standing == Standing(Tier.OVER, back, None)
        # 7 days after the first alert but not after the second: not suspended.
        assert decide(standing, self.OVER, rules, T0 + timedelta(days=7)).emails == ()
        assert decide(standing, self.OVER, rules, back + timedelta(days=7)).emails == (
            "seller_suspended",
        )
