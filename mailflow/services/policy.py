"""The cancellation-rate policy, applied: a seller's tier moves, and the events say so.

``evaluate`` runs inside the transaction of every event that moves a seller's rate, and the
sweeper runs ``evaluate_all`` (the window slides, grace runs out, suspensions end). The rule
is ``domain.policy.decide``; the counts and the tier are in ``store.standings``, whose
compare-and-set on ``tier_version`` lets only one of two processes evaluating the same seller
at once win; only the winner's events are dispatched, so only it queues the emails
(``services.notify``). ``stats`` and ``stats_all`` are what a seller and the admins see.
"""

from __future__ import annotations

from typing import Any

from mailflow.config import PolicySettings
from mailflow.domain.events import tier_events
from mailflow.domain.policy import Counts, Standing, Tier, decide, tier_for
from mailflow.domain.sales import SaleStatus
from mailflow.mail.contexts import as_context
from mailflow.services.context import ServiceContext
from mailflow.services.dispatch import dispatch
from mailflow.services.errors import NotFound
from mailflow.services.rates import rate_vars, rules_of, warning_at, window_start
from mailflow.store import standings as store
from mailflow.store.database import Transaction
from mailflow.store.records import SellerRecord

__all__ = [
    "FULL_SWEEP_EVERY",
    "evaluate",
    "evaluate_all",
    "rate_context",
    "rules_of",
    "standing_of",
    "stats",
    "stats_all",
    "stats_in",
    "window_start",
]


def standing_of(seller: Any) -> Standing:
    return Standing(Tier(seller.tier), seller.tier_since, seller.suspended_until)


def rate_context(ctx: Any, counts: Counts) -> dict[str, Any]:
    """The rate group of the emails, as templates get it (``ctx``: anything with ``policy``)."""
    settings: PolicySettings = ctx.policy
    return as_context(rate_vars(settings, counts))


def evaluate(
    ctx: ServiceContext, tx: Transaction, seller_id: int, seller: SellerRecord | None = None
) -> Standing | None:
    """Re-evaluate one seller in the caller's transaction; the new standing if it changed.

    ``seller``: the seller's row as this transaction already read it (its tier and
    ``tier_version``), else it is read here. A stale one only loses the compare-and-set.
    """
    now = ctx.clock()
    standings = ctx.standings
    if seller is None:
        seller = standings.seller(tx, seller_id)
        if seller is None:
            return None
    counts = standings.counts(tx, seller_id, window_start(ctx.policy, now))
    before = standing_of(seller)
    decision = decide(before, counts, rules_of(ctx.policy), now)
    if not decision.changed_from(before):
        return None
    written = standings.set_standing(tx, seller, decision.standing)
    if written is None:
        return None  # another process evaluated this seller at the same moment and won
    dispatch(ctx, tx, tier_events(seller_id, before, decision, counts, now), written)
    return decision.standing


# An incremental sweep trusts that every event re-evaluated its seller when it happened; a
# full recount this often repairs anything a lost race left behind.
FULL_SWEEP_EVERY = 60


def evaluate_all(ctx: ServiceContext, *, full: bool = False) -> int:
    """Evaluate every seller (the sweeper); returns how many changed tier.

    The first sweep of a process, and every ``FULL_SWEEP_EVERY``-th, recounts every seller in
    one grouped query; the others count only the sellers whose rate could have moved without
    an event: those out of ``ok`` (grace and suspensions run out) and those whose window lost
    sales as it slid.
    """
    now = ctx.clock()
    rules = rules_of(ctx.policy)
    since = window_start(ctx.policy, now)
    memory = ctx.sweep_memory
    incremental = (
        not full
        and memory.window_since is not None
        and memory.window_since <= since
        and memory.incremental_sweeps < FULL_SWEEP_EVERY
    )
    with ctx.db.read() as session:
        if incremental:
            assert memory.window_since is not None
            counts = store.counts_of_candidates(session, since, memory.window_since)
        else:
            counts = store.counts_all(session, since)
        # Only sellers out of ok need their stored standing: for a seller in ok, decide()
        # gives the same verdict whatever its tier_since (and no list of every seller id
        # goes to the database as parameters).
        standings = store.out_of_ok(session)
    memory.window_since = since
    memory.incremental_sweeps = memory.incremental_sweeps + 1 if incremental else 0
    ok = Standing()
    due = [
        seller_id
        for seller_id in sorted(standings.keys() | counts.keys())
        if decide(
            before := standings.get(seller_id, ok), counts.get(seller_id, Counts()), rules, now
        ).changed_from(before)
    ]
    changed = 0
    for seller_id in due:
        with ctx.db.transaction() as session:
            changed += evaluate(ctx, session, seller_id) is not None
    return changed


def stats(ctx: ServiceContext, seller_id: int) -> dict[str, Any]:
    """What the seller (and an admin) sees: the rate, the tier and the sales that count."""
    with ctx.db.read() as session:
        return stats_in(ctx, session, seller_id)


def stats_in(ctx: ServiceContext, session: Transaction, seller_id: int) -> dict[str, Any]:
    """``stats``, read in ``session`` (a webhook's data, in the transaction of the change)."""
    now = ctx.clock()
    since = window_start(ctx.policy, now)
    against = [SaleStatus.CANCELLED.value]
    if ctx.policy.count_refusals:
        against += list(store.REFUSED)
    seller = store.seller(session, seller_id)
    if seller is None:
        raise NotFound(f"no seller {seller_id}")
    counts = store.counts(session, seller_id, since)
    sales = store.counted_sales(session, seller_id, since, against)
    rules = rules_of(ctx.policy)
    return {
        "seller_id": seller_id,
        "rate": round(counts.rate(rules.count_refusals), 6),
        "tier": seller.tier,
        "tier_since": seller.tier_since,
        "counted": counts.counted,
        "cancelled": counts.cancelled,
        "refused": counts.refused,
        "withdrawn": counts.withdrawn,
        "window_days": ctx.policy.window_days,
        "min_sales": ctx.policy.min_sales,
        "threshold": ctx.policy.threshold,
        "warning_at": warning_at(ctx.policy),
        "count_refusals": ctx.policy.count_refusals,
        "suspended_until": seller.suspended_until,
        "sales": [
            {
                "id": s.id,
                "order_id": s.order_id,
                "title": s.title,
                "status": s.status,
                "reason": s.reason,
                "created_at": s.created_at,
            }
            for s in sales
        ],
    }


def stats_all(ctx: ServiceContext, *, over_only: bool = False) -> list[dict[str, Any]]:
    """Every seller's rate and tier, highest rate first (``mailflow sellers stats``)."""
    now = ctx.clock()
    rules = rules_of(ctx.policy)
    with ctx.db.read() as session:
        counts = store.counts_all(session, window_start(ctx.policy, now))
        sellers = store.tiers(session)
    rows: list[dict[str, Any]] = []
    for seller in sellers:
        c = counts.get(seller.id, Counts())
        rate = c.rate(rules.count_refusals)
        counted_over = c.counted >= rules.min_sales and tier_for(c, rules) is Tier.OVER
        if over_only and not (counted_over or seller.tier in ("over", "suspended")):
            continue
        rows.append(
            {
                "id": seller.id,
                "name": seller.name,
                "rate": rate,
                "tier": seller.tier,
                "counted": c.counted,
                "cancelled": c.cancelled,
                "refused": c.refused,
                "withdrawn": c.withdrawn,
                "suspended_until": seller.suspended_until,
            }
        )
    rows.sort(key=lambda r: (-r["rate"], r["id"]))
    return rows
