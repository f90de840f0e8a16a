"""The policy's settings as the domain's rules, its window, and the rate as emails show it."""

from __future__ import annotations

from datetime import datetime, timedelta

from mailflow.config import PolicySettings
from mailflow.domain.policy import Counts, Rules
from mailflow.mail.contexts import RateVars


def rules_of(policy: PolicySettings) -> Rules:
    return Rules(
        min_sales=policy.min_sales,
        threshold=policy.threshold,
        warning_ratio=policy.warning_ratio,
        grace=timedelta(days=policy.grace_days),
        suspension=timedelta(days=policy.suspension_days),
        count_refusals=policy.count_refusals,
    )


def window_start(policy: PolicySettings, now: datetime) -> datetime:
    return now - timedelta(days=policy.window_days)


def warning_at(policy: PolicySettings) -> float:
    return round(policy.threshold * policy.warning_ratio, 9)


def rate_vars(policy: PolicySettings, counts: Counts) -> RateVars:
    return RateVars(
        value=counts.rate(policy.count_refusals),
        threshold=policy.threshold,
        warning_at=warning_at(policy),
        counted=counts.counted,
        cancelled=counts.cancelled,
        refused=counts.refused,
        withdrawn=counts.withdrawn,
        window_days=policy.window_days,
        min_sales=policy.min_sales,
        count_refusals=policy.count_refusals,
    )
