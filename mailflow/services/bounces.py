"""``bounce+`` addresses: delivery status notifications for the outbox rows they name.

A permanent failure (``5.x.x``) marks the row ``bounced`` with the status code and the
diagnostic, puts its recipient on the suppression list (``hard_bounce``) and hands the
events ``EmailBounced`` and, for a new suppression, ``AddressSuppressed`` to
``services.dispatch`` (customer service hears of an unreachable seller from there). A
temporary one (``4.x.x``, delayed) is noted in the row's history only. An auto-reply, or
anything that is no bounce, is kept and ignored. The same DSN received twice changes nothing
the second time (verdict ``duplicate``).
"""

from __future__ import annotations

from typing import NamedTuple

from mailflow.domain.events import AddressSuppressed, EmailBounced, Event
from mailflow.inbound import bounces as reader
from mailflow.inbound.addresses import Address, UnknownAddress, from_base36
from mailflow.inbound.autoreply import is_auto_reply
from mailflow.services import dispatch
from mailflow.services.context import ServiceContext
from mailflow.services.received import Received, Verdict
from mailflow.store import outbox as outbox_store
from mailflow.store import sales as sale_store
from mailflow.store import suppressions
from mailflow.store.database import Transaction


class _Ids(NamedTuple):
    outbox_id: int
    sale_id: int | None


def check(ctx: ServiceContext, address: Address) -> None:
    try:
        from_base36(address.payload)
    except ValueError as exc:
        raise UnknownAddress("no such mailbox") from exc


def receive(ctx: ServiceContext, tx: Transaction, received: Received) -> Verdict:
    row_id = from_base36(received.address.payload)
    row = outbox_store.facts(tx, row_id)
    if row is None:
        return Verdict("unknown", f"no outbox message {row_id}")
    ids = _Ids(row.id, row.sale_id)
    try:
        report = reader.read(received.parsed)
    except reader.UnreadableBounce as exc:
        return Verdict("unreadable", str(exc), "", *ids)
    if not report.failures:
        # A DSN comes from <>; an auto-reply (a vacation notice sent to the Return-Path)
        # is told by its headers alone.
        auto = is_auto_reply(received.parsed, received.mail_from or "MAILER-DAEMON")
        reason = f"auto-reply ({auto})" if auto else "not a delivery status notification"
        return Verdict("ignored", reason, "", *ids)
    if report.permanent:
        return _bounced(ctx, tx, row, report.permanent[0], received, ids)
    failure = report.temporary[0]
    detail = f"{failure.status} {failure.diagnostic}"
    outbox_store.add_attempt(tx, row.id, received.received_at, "delayed", detail[:2000])
    return Verdict("delayed", detail, f"noted on outbox {row.id}", *ids)


def _bounced(
    ctx: ServiceContext,
    tx: Transaction,
    row: outbox_store.OutboxFacts,
    failure: reader.Failure,
    received: Received,
    ids: _Ids,
) -> Verdict:
    at = received.received_at
    detail = f"{failure.status} {failure.diagnostic}"
    if not outbox_store.mark_bounced(tx, row.id, failure.status, failure.diagnostic, at):
        return Verdict("duplicate", detail, f"outbox {row.id} was already bounced", *ids)
    # VERP names the row, so the address to suppress is the row's, whatever the DSN
    # calls it (a forwarding address, or none).
    new = suppressions.add(
        tx,
        row.recipient,
        reason=suppressions.HARD_BOUNCE,
        detail=detail,
        outbox_id=row.id,
        at=at,
    )
    events: list[Event] = [
        EmailBounced(
            row.id, row.template, row.recipient, row.sale_id, failure.status, failure.diagnostic, at
        )
    ]
    if new:
        events.append(
            AddressSuppressed(
                suppressions.fold(row.recipient),
                suppressions.HARD_BOUNCE,
                row.id,
                row.template,
                row.sale_id,
                failure.status,
                failure.diagnostic,
                at,
            )
        )
    about = sale_store.facts(tx, row.sale_id) if row.sale_id is not None else None
    dispatch.dispatch(ctx, tx, events, about)
    became = f"outbox {row.id} bounced; {row.recipient} " + (
        "suppressed" if new else "was already suppressed"
    )
    return Verdict("bounced", detail, became, *ids, email_outcome="bounced", template=row.template)
