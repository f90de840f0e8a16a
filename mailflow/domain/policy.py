"""The cancellation-rate policy: the rate, and the tier machine (docs/policy.md#the-rate,
docs/policy.md#tiers).

rate = (sales in the window cancelled by the seller [+ refused/expired if ``count_refusals``])
       / (sales in the window − withdrawn ones)

Tiers: ``ok`` → ``warning`` (rate ≥ threshold × warning_ratio) → ``over`` (rate ≥ threshold;
exactly the threshold is over) → ``suspended`` (still over ``grace_days`` after entering
``over``). Below ``min_sales`` counted sales a seller stays ``ok`` whatever the rate. A
suspension ends after ``suspension_days``; the seller is then evaluated afresh.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class Tier(StrEnum):
    OK = "ok"
    WARNING = "warning"
    OVER = "over"
    SUSPENDED = "suspended"


# The email sent on entering a tier (None: entering it sends nothing).
TIER_EMAILS: dict[Tier, str | None] = {
    Tier.OK: None,
    Tier.WARNING: "seller_rate_warning",
    Tier.OVER: "seller_rate_alert",
    Tier.SUSPENDED: "seller_suspended",
}
REINSTATED_EMAIL = "seller_reinstated"
_EPSILON = 1e-9
_RANK = {Tier.OK: 0, Tier.WARNING: 1, Tier.OVER: 2, Tier.SUSPENDED: 3}


@dataclass(frozen=True, slots=True)
class Rules:
    min_sales: int
    threshold: float
    warning_ratio: float
    grace: timedelta
    suspension: timedelta
    count_refusals: bool


@dataclass(frozen=True, slots=True)
class Counts:
    """A seller's sales in the window, by what they are now."""

    total: int = 0
    cancelled: int = 0
    refused: int = 0  # refused or expired
    withdrawn: int = 0

    @property
    def counted(self) -> int:
        return self.total - self.withdrawn

    def against(self, count_refusals: bool) -> int:
        return self.cancelled + (self.refused if count_refusals else 0)

    def rate(self, count_refusals: bool) -> float:
        return self.against(count_refusals) / self.counted if self.counted else 0.0


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a seller stands: the tier, since when, and a suspension's end."""

    tier: Tier = Tier.OK
    since: datetime | None = None
    suspended_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    standing: Standing
    emails: tuple[str, ...]

    def changed_from(self, before: Standing) -> bool:
        return self.standing != before


def tier_for(counts: Counts, rules: Rules) -> Tier:
    """The tier the rate alone puts the seller in (never ``suspended``)."""
    if counts.counted < rules.min_sales:
        return Tier.OK
    rate = counts.rate(rules.count_refusals)
    # A rate exactly at a bound is in the higher tier; the tolerance keeps binary floating
    # point (0.05 × 0.8 = 0.04000000000000001) from moving a seller at 1/25 below the band.
    if rate >= rules.threshold - _EPSILON:
        return Tier.OVER
    if rate >= rules.threshold * rules.warning_ratio - _EPSILON:
        return Tier.WARNING
    return Tier.OK


def decide(before: Standing, counts: Counts, rules: Rules, now: datetime) -> Decision:
    """The seller's standing after looking at ``counts`` at ``now``, and the emails it sends.

    An email goes once per entry into a tier: ``warning`` when entered from ``ok``,
    ``over`` (the alert) when entered from below, ``suspended`` when the grace runs out,
    and ``seller_reinstated`` when a suspension ends.
    """
    emails: list[str] = []
    current = before
    if current.tier is Tier.SUSPENDED:
        if current.suspended_until is not None and now < current.suspended_until:
            return Decision(current, ())
        emails.append(REINSTATED_EMAIL)
        current = Standing(Tier.OK, now, None)

    target = tier_for(counts, rules)
    if (
        target is Tier.OVER
        and current.tier is Tier.OVER
        and current.since is not None
        and now - current.since >= rules.grace
    ):
        standing = Standing(Tier.SUSPENDED, now, now + rules.suspension)
        emails.append(TIER_EMAILS[Tier.SUSPENDED] or "")
        return Decision(standing, tuple(emails))
    if target is not current.tier:
        entering_higher = _RANK[target] > _RANK[current.tier]
        current = replace(current, tier=target, since=now)
        email = TIER_EMAILS[target]
        if email and entering_higher:
            emails.append(email)
    return Decision(current, tuple(emails))
