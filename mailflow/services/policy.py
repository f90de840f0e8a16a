"""The cancellation-rate policy, applied: rates in SQL, tier changes, tier emails.

``evaluate`` runs inside the transaction of every event that moves a seller's rate, and the
sweeper runs ``evaluate_all`` (the window slides, grace runs out, suspensions end). A tier
change is written with a compare-and-set on ``tier_version``, so when two processes evaluate
the same seller at once one wins and only the winner queues the email.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlmodel import Session

from mailflow.config import PolicySettings
from mailflow.domain.policy import Counts, Rules, Standing, Tier, decide, tier_for
from mailflow.domain.sales import SaleStatus
from mailflow.mail.outbox import Recipient
from mailflow.services import facts
from mailflow.services.context import ServiceContext
from mailflow.services.errors import NotFound
from mailflow.services.facts import Record
from mailflow.store import direct
from mailflow.store.models import Sale, Seller

_sellers = Seller.__table__
_REFUSED = (SaleStatus.REFUSED.value, SaleStatus.EXPIRED.value)


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


def _count_columns() -> list[Any]:
    return [
        func.count(),
        func.count().filter(Sale.status == SaleStatus.CANCELLED.value),
        # OR rather than IN: an IN list is an expanding parameter, which store.direct
        # leaves to SQLAlchemy
        func.count().filter(or_(*(Sale.status == status for status in _REFUSED))),
        func.count().filter(Sale.status == SaleStatus.WITHDRAWN.value),
    ]


_COUNTS_OF_SELLER = select(*_count_columns()).where(
    Sale.seller_id == bindparam("b_seller"), Sale.created_at >= bindparam("b_since")
)


_SET_TIER = (
    update(_sellers)
    .where(_sellers.c.id == bindparam("b_id"), _sellers.c.tier_version == bindparam("b_version"))
    .values(
        {
            name: bindparam(name)
            for name in ("tier", "tier_since", "suspended_until", "tier_version")
        }
    )
)


def counts_for(session: Session, seller_id: int, since: datetime) -> Counts:
    row = (
        direct.connection(session)
        .execute(_COUNTS_OF_SELLER, {"b_seller": seller_id, "b_since": since})
        .one()
    )
    return Counts(*row)


def counts_all(session: Session, since: datetime) -> dict[int, Counts]:
    rows = session.execute(
        select(Sale.seller_id, *_count_columns())
        .where(Sale.created_at >= since)
        .group_by(Sale.seller_id)
    ).all()
    return {row[0]: Counts(*row[1:]) for row in rows}


def standing_of(seller: Any) -> Standing:
    return Standing(Tier(seller.tier), seller.tier_since, seller.suspended_until)


def rate_context(ctx: ServiceContext, counts: Counts) -> dict[str, Any]:
    policy = ctx.policy
    return {
        "value": counts.rate(policy.count_refusals),
        "threshold": policy.threshold,
        "warning_at": round(policy.threshold * policy.warning_ratio, 9),
        "counted": counts.counted,
        "cancelled": counts.cancelled,
        "refused": counts.refused,
        "withdrawn": counts.withdrawn,
        "window_days": policy.window_days,
        "min_sales": policy.min_sales,
        "count_refusals": policy.count_refusals,
    }


def evaluate(
    ctx: ServiceContext, session: Session, seller_id: int, seller: Record | None = None
) -> Standing | None:
    """Re-evaluate one seller in the caller's transaction; the new standing if it changed.

    ``seller``: the seller's row as this transaction already read it (its tier and
    ``tier_version``), else it is read here. A stale one only loses the compare-and-set.
    """
    now = ctx.clock()
    if seller is None:
        seller = facts.seller(session, seller_id)
        if seller is None:
            return None
    counts = counts_for(session, seller_id, window_start(ctx.policy, now))
    before = standing_of(seller)
    decision = decide(before, counts, rules_of(ctx.policy), now)
    if not decision.changed_from(before):
        return None
    after = decision.standing
    values = {
        "tier": after.tier.value,
        "tier_since": after.since,
        "suspended_until": after.suspended_until,
        "tier_version": seller.tier_version + 1,
    }
    won = (
        direct.connection(session)
        .execute(_SET_TIER, {**values, "b_id": seller_id, "b_version": seller.tier_version})
        .rowcount
    )
    if not won:
        return None  # another process evaluated this seller at the same moment and won
    seller.__dict__.update(values)
    context = {
        "seller": {"id": seller.id, "name": seller.name, "email": seller.email},
        "rate": rate_context(ctx, counts),
        "tier": after.tier.value,
        "suspended_until": after.suspended_until,
        "grace_ends": (after.since or now) + timedelta(days=ctx.policy.grace_days),
        "now": now,
    }
    to = Recipient(seller.name, seller.email, seller.locale)
    for key in decision.emails:
        ctx.outbox.queue(session, key, to, context, sender=ctx.seller_support_address)
    return after


# An incremental sweep trusts that every event re-evaluated its seller when it happened; a
# full recount this often repairs anything a lost race left behind.
FULL_SWEEP_EVERY = 60


def counts_of_candidates(
    session: Session, since: datetime, slid_from: datetime
) -> dict[int, Counts]:
    """Counts of the sellers a sweep must look at: those out of ``ok`` and those whose window
    lost sales since ``slid_from`` (the rate of anyone else only moves through events)."""
    slid = select(Sale.seller_id).where(Sale.created_at >= slid_from, Sale.created_at < since)
    out_of_ok = select(Seller.id).where(Seller.tier != Tier.OK.value)
    rows = session.execute(
        select(Sale.seller_id, *_count_columns())
        .where(Sale.created_at >= since, Sale.seller_id.in_(slid.union(out_of_ok)))
        .group_by(Sale.seller_id)
    ).all()
    return {row[0]: Counts(*row[1:]) for row in rows}


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
            counts = counts_of_candidates(session, since, memory.window_since)
        else:
            counts = counts_all(session, since)
        # Only sellers out of ok need their stored standing: for a seller in ok, decide()
        # gives the same verdict whatever its tier_since (and no list of every seller id
        # goes to the database as parameters).
        standings = {
            row.id: Standing(Tier(row.tier), row.tier_since, row.suspended_until)
            for row in session.execute(
                select(Seller.id, Seller.tier, Seller.tier_since, Seller.suspended_until).where(
                    Seller.tier != Tier.OK.value
                )
            )
        }
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
    now = ctx.clock()
    since = window_start(ctx.policy, now)
    against = [SaleStatus.CANCELLED.value]
    if ctx.policy.count_refusals:
        against += list(_REFUSED)
    with ctx.db.read() as session:
        seller = session.get(Seller, seller_id)
        if seller is None:
            raise NotFound(f"no seller {seller_id}")
        counts = counts_for(session, seller_id, since)
        sales = session.execute(
            select(Sale.id, Sale.order_id, Sale.title, Sale.status, Sale.reason, Sale.created_at)
            .where(
                Sale.seller_id == seller_id,
                Sale.created_at >= since,
                Sale.status.in_(against),
            )
            .order_by(Sale.created_at.desc())
        ).all()
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
        "warning_at": round(ctx.policy.threshold * ctx.policy.warning_ratio, 9),
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
        counts = counts_all(session, window_start(ctx.policy, now))
        sellers = session.execute(
            select(Seller.id, Seller.name, Seller.tier, Seller.suspended_until)
        ).all()
    rows = []
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
