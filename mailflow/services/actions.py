"""What an action on a sale would do, and doing it from an emailed link.

A GET on an action link changes nothing (mail scanners fetch links): the page asks
``preview`` what the action would do. The POST goes through ``services.sales.transition``,
as every state change does, and ``act`` answers with what the page shows.

The codes the pages and the API speak in (actions, actors, channels, reasons, statuses) are
the domain's; they are re-exported here so that the web layer names them without reaching
into the domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailflow.domain import sales as rules
from mailflow.domain.sales import (
    MAX_MESSAGE_LENGTH,
    Action,
    Actor,
    Channel,
    Reason,
    SaleStatus,
    deadline_of,
)
from mailflow.services import sales
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict, NotFound
from mailflow.store import sales as sale_store
from mailflow.store.records import SaleFacts, SaleRecord

__all__ = [
    "EMAIL_LINK_ACTIONS",
    "MAX_MESSAGE_LENGTH",
    "Action",
    "ActionOutcome",
    "ActionPreview",
    "Actor",
    "Channel",
    "Hint",
    "Reason",
    "SaleStatus",
    "SaleSummary",
    "act",
    "possible",
    "preview",
    "seller_locale",
]

EMAIL_LINK_ACTIONS = (Action.ACCEPT, Action.REFUSE)
"""The actions an emailed link can do (a "view" link only shows the sale)."""


@dataclass(frozen=True)
class SaleSummary:
    """What an action page shows of a sale: the sale as stored, and its deadline."""

    record: SaleRecord
    deadline: datetime
    """When a pending sale expires unless the seller accepts it."""


@dataclass(frozen=True)
class Hint:
    """Why ``action`` cannot be done from ``status``: the code the pages word as what to do
    instead (``i18n.hint_for``)."""

    action: Action
    status: SaleStatus


@dataclass(frozen=True)
class ActionPreview:
    """What ``action`` would do to the sale now; nothing is changed."""

    sale: SaleSummary
    locale: str
    """The seller's language."""
    link_actions: tuple[Action, ...]
    """The actions an emailed link could do from the sale's state."""
    would_change: bool
    already_done: bool
    hint: Hint | None
    """Set when the action is impossible from the sale's state."""

    @property
    def conflict(self) -> bool:
        return self.hint is not None


@dataclass(frozen=True)
class ActionOutcome:
    """What ``act`` did: ``changed``, or nothing because it was already done (``hint`` is
    None) or impossible (``hint`` says why)."""

    sale: SaleSummary
    locale: str
    changed: bool
    hint: Hint | None


def possible(status: str) -> tuple[Action, ...]:
    """The actions possible on a sale that is ``status``, in a stable order."""
    return tuple(rules.allowed_actions(SaleStatus(status)))


def _summary(ctx: ServiceContext, sale: SaleRecord) -> SaleSummary:
    return SaleSummary(sale, deadline_of(sale.created_at, ctx.policy.acceptance_deadline_hours))


def _load(ctx: ServiceContext, sale_id: int) -> SaleFacts | None:
    with ctx.db.read() as tx:
        return sale_store.facts(tx, sale_id)


def preview(ctx: ServiceContext, sale_id: int, action: Action | None) -> ActionPreview:
    """What ``action`` (None: only showing the sale) would do to the sale now.

    Raises ``NotFound`` when there is no such sale."""
    about = _load(ctx, sale_id)
    if about is None:
        raise NotFound(f"no sale {sale_id}")
    status = SaleStatus(about.sale.status)
    would_change = already_done = False
    hint = None
    if action is not None:
        try:
            rules.plan(action, status)
            would_change = True
        except rules.AlreadyDone:
            already_done = True
        except rules.IllegalTransition:
            hint = Hint(action, status)
    return ActionPreview(
        sale=_summary(ctx, about.sale),
        locale=about.seller.locale,
        link_actions=tuple(a for a in rules.allowed_actions(status) if a in EMAIL_LINK_ACTIONS),
        would_change=would_change,
        already_done=already_done,
        hint=hint,
    )


def act(ctx: ServiceContext, sale_id: int, action: Action, reason: Reason | None) -> ActionOutcome:
    """The seller's click on an emailed link for ``action``. Raises ``NotFound``."""
    try:
        # The transaction reads the sale with its seller: no read of its own before it, and
        # the page shows the sale as the transaction left it.
        outcome = sales.transition(
            ctx,
            sale_id,
            action,
            actor=Actor.SELLER,
            channel=Channel.EMAIL_LINK,
            reason=reason if action is Action.REFUSE else None,
            view=False,
        )
    except Conflict:
        # Impossible from the state another request left: say so from that state, even
        # when it changed again since (the page tells what to do from where it is now).
        now = preview(ctx, sale_id, action)
        return ActionOutcome(
            now.sale, now.locale, False, Hint(action, SaleStatus(now.sale.record.status))
        )
    assert outcome.facts is not None
    about = outcome.facts
    return ActionOutcome(_summary(ctx, about.sale), about.seller.locale, outcome.changed, None)


def seller_locale(ctx: ServiceContext, sale_id: int) -> str | None:
    """The language of the seller of the sale, if there is one."""
    about = _load(ctx, sale_id)
    return about.seller.locale if about else None
