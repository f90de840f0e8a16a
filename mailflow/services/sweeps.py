"""The sweeper: expires pending sales past their deadline and reminds sellers once before.

Safe when it races a click or an API call (expiry goes through the same compare-and-set as
every transition) and when several processes sweep at once (the reminder is claimed with a
compare-and-set on ``reminder_sent_at``): one winner, one email.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from mailflow.domain.events import DeadlineNear
from mailflow.domain.sales import Action, Actor, Channel
from mailflow.services import policy
from mailflow.services.context import ServiceContext
from mailflow.services.dispatch import dispatch
from mailflow.services.errors import Conflict
from mailflow.services.sales import transition
from mailflow.store import sales as store

log = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True)
class SweepReport:
    expired: int
    reminded: int
    tiers_changed: int = 0


def sweep(ctx: ServiceContext) -> SweepReport:
    expired = expire_overdue(ctx)
    reminded = remind_near_deadline(ctx)
    # The window slides, grace runs out, suspensions end: every seller, after the expiries.
    return SweepReport(expired, reminded, policy.evaluate_all(ctx))


def expire_overdue(ctx: ServiceContext) -> int:
    now = ctx.clock()
    cutoff = now - timedelta(hours=ctx.policy.acceptance_deadline_hours)
    expired = 0
    while True:
        with ctx.db.read() as session:
            ids = store.pending_created_before(session, cutoff, BATCH)
        changed = 0
        for sale_id in ids:
            try:
                outcome = transition(
                    ctx, sale_id, Action.EXPIRE, actor=Actor.SYSTEM, channel=Channel.SWEEP
                )
            except Conflict:
                continue  # a seller or another sweeper moved it first
            changed += outcome.changed
        expired += changed
        if len(ids) < BATCH:
            return expired


def remind_near_deadline(ctx: ServiceContext) -> int:
    policy = ctx.policy
    if policy.reminder_before_hours <= 0:
        return 0
    now = ctx.clock()
    deadline = timedelta(hours=policy.acceptance_deadline_hours)
    remind_from = now - deadline + timedelta(hours=policy.reminder_before_hours)
    with ctx.db.read() as session:
        ids = store.due_reminders(session, now - deadline, remind_from, BATCH)
    reminded = 0
    for sale_id in ids:
        with ctx.db.transaction() as session:
            if store.claim_reminder(session, sale_id, now):
                about = store.facts(session, sale_id)
                assert about is not None
                dispatch(ctx, session, (DeadlineNear(sale_id, now),), about)
                reminded += 1
    return reminded
