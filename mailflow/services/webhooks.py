"""Webhooks to the marketplace: the endpoints it registers, and the events of every change.

The handlers (registered in ``services.dispatch.HANDLERS``) run in the transaction of the
change: when an active endpoint takes the event's type, they write the event (its body
complete, ``data`` being the API's own object as this transaction sees it) and one queued
delivery per endpoint, which the worker (``mailflow.webhooks.delivery``) sends once the change
has committed. No endpoint, no row: installations without webhooks pay one cached read per
transaction.

``queue_event`` is the entry for events of other parts (``email.bounced``,
``message.received``): the same body, sequence and deliveries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic_core import to_jsonable_python

from mailflow.domain.events import (
    EmailBounced,
    MessageWritten,
    SaleCreated,
    SaleTransitioned,
    TierChanged,
)
from mailflow.domain.sales import Action, Reason
from mailflow.domain.webhooks import (
    EVENT_TYPES,
    WILDCARD,
    new_event_id,
    new_secret,
    subscribes,
)
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict, InvalidInput, NotFound
from mailflow.services.listings import listing_view
from mailflow.store import outbox as outbox_store
from mailflow.store import webhooks as store
from mailflow.store.database import Transaction
from mailflow.store.records import SaleFacts, SellerRecord
from mailflow.store.webhooks import DeliveryRecord, EndpointRecord
from mailflow.webhooks import guard

MAX_EVENTS = 20


# --- the events of a change ---------------------------------------------------------------------


def queue_event(
    ctx: ServiceContext, tx: Transaction, type_: str, subject: str, data: Any
) -> str | None:
    """Write event ``type_`` about ``subject`` (``sale:12``, ``seller:3``, ``listing:7``) and a
    delivery for each active endpoint that takes it, in ``tx``. Its ``evt_`` id, or None when
    no endpoint takes it (nothing is written). ``data`` may be a callable, called only then."""
    assert type_ in EVENT_TYPES, type_
    hooks = ctx.webhooks
    endpoint_ids = [i for i, types in hooks.subscribers(tx) if subscribes(types, type_)]
    if not endpoint_ids:
        return None
    now = ctx.clock()
    sequence = hooks.next_sequence(tx, subject)
    event_id = new_event_id()
    body = {
        "id": event_id,
        "type": type_,
        "created_at": now,
        "sequence": sequence,
        "data": data() if callable(data) else data,
    }
    encoded = json.dumps(to_jsonable_python(body), separators=(",", ":"), ensure_ascii=False)
    hooks.add_event(
        tx,
        event_id=event_id,
        type_=type_,
        subject=subject,
        sequence=sequence,
        body=encoded.encode("utf-8"),
        at=now,
        endpoint_ids=endpoint_ids,
    )
    return event_id


def _sale_data(tx: Transaction, about: SaleFacts) -> dict[str, Any]:
    # Imported here: services.sales dispatches, so it imports this module's registry.
    from mailflow.services.sales import emails_view, sale_view

    # As GET /api/v1/sales/{id} answers it, read in the change's transaction: its emails are
    # the ones queued so far, in the delivery state they are in at that moment.
    return {**sale_view(tx, about.sale, about.payment), "emails": emails_view(tx, about.sale.id)}


def sale_created(ctx: ServiceContext, tx: Transaction, event: SaleCreated, about: Any) -> None:
    assert isinstance(about, SaleFacts)
    queue_event(ctx, tx, "sale.created", f"sale:{event.sale_id}", lambda: _sale_data(tx, about))


def sale_transitioned(
    ctx: ServiceContext, tx: Transaction, event: SaleTransitioned, about: Any
) -> None:
    assert isinstance(about, SaleFacts)
    type_ = f"sale.{event.target.value}"
    if type_ in EVENT_TYPES:
        queue_event(ctx, tx, type_, f"sale:{event.sale_id}", lambda: _sale_data(tx, about))
    if event.action is Action.REFUSE and event.reason == Reason.OUT_OF_STOCK.value:
        # The refusal took the listing off sale (services.sales._record).
        listing_id = about.sale.listing_id

        def listing_data() -> dict[str, Any]:
            found = ctx.webhooks.listing(tx, listing_id)
            assert found is not None
            return {"id": listing_id, **listing_view(found)}

        queue_event(ctx, tx, "listing.deactivated", f"listing:{listing_id}", listing_data)


def tier_changed(ctx: ServiceContext, tx: Transaction, event: TierChanged, about: Any) -> None:
    assert isinstance(about, SellerRecord)

    def stats() -> dict[str, Any]:
        from mailflow.services.policy import stats_in  # policy dispatches too

        return {**stats_in(ctx, tx, event.seller_id), "tier_before": event.before.tier.value}

    queue_event(ctx, tx, "seller.tier_changed", f"seller:{event.seller_id}", stats)


def email_bounced(ctx: ServiceContext, tx: Transaction, event: EmailBounced, about: Any) -> None:
    """``email.bounced``: an email about a sale bounced for good (the sale's events count it);
    a bounce of an email about no sale (a login link, a tier email) sends no event."""
    if event.sale_id is None:
        return
    sale_id = event.sale_id

    def email() -> dict[str, Any]:
        found = [e for e in outbox_store.of_sale(tx, sale_id) if e.id == event.outbox_id]
        return {
            "sale_id": sale_id,
            "key": event.template,
            "to": event.recipient,
            "status": "bounced",
            "message_id": found[0].message_id if found else None,
            "bounce": {"status": event.status, "diagnostic": event.diagnostic},
        }

    queue_event(ctx, tx, "email.bounced", f"sale:{sale_id}", email)


def message_received(
    ctx: ServiceContext, tx: Transaction, event: MessageWritten, about: Any
) -> None:
    """``message.received``: a message joined the sale's conversation, as
    ``GET /api/v1/sales/{id}/messages`` lists it."""
    data = {
        "sale_id": event.sale_id,
        "id": event.message_id,
        "from": event.author,
        "body": event.body,
        "received_at": event.at,
        "status": "relayed",
    }
    queue_event(ctx, tx, "message.received", f"sale:{event.sale_id}", data)


# --- endpoints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    endpoint: dict[str, Any]
    secret: str


def endpoint_view(e: EndpointRecord) -> dict[str, Any]:
    """An endpoint as the API and the console show it: never its secret."""
    return {
        "id": e.id,
        "url": e.url,
        "description": e.description,
        "events": e.events,
        "active": e.active,
        "disabled_reason": e.disabled_reason,
        "disabled_at": e.disabled_at,
        "failing_since": e.failing_since,
        "previous_secret_until": e.previous_secret_until if e.previous_secret else None,
        "created_at": e.created_at,
    }


def check_url(ctx: ServiceContext, url: str) -> str:
    """The URL if an endpoint may have it; raises ``InvalidInput`` (field ``url``)."""
    hooks = ctx.webhook_settings
    try:
        target = guard.parse(url, allow_http=hooks.allow_http)
        guard.resolve(target, allow_private=hooks.allow_private_networks)
    except guard.UrlRefused as exc:
        raise InvalidInput("url", str(exc)) from exc
    return url


def _events(events: list[str]) -> list[str]:
    if not events:
        raise InvalidInput("events", 'must name at least one event type, or ["*"]')
    unknown = sorted(set(events) - EVENT_TYPES - {WILDCARD})
    if unknown:
        raise InvalidInput(
            "events", f"unknown event type {unknown[0]!r}; known: {', '.join(sorted(EVENT_TYPES))}"
        )
    if WILDCARD in events:
        return [WILDCARD]
    return sorted(set(events))


def create_endpoint(
    ctx: ServiceContext, url: str, events: list[str], description: str = ""
) -> Created:
    """A new endpoint with a fresh secret (shown to the caller once)."""
    kinds = _events(events)
    check_url(ctx, url)
    secret = new_secret()
    with ctx.db.transaction() as tx:
        made = store.add_endpoint(tx, url, description, kinds, secret, ctx.clock())
    return Created(endpoint_view(made), secret)


def list_endpoints(ctx: ServiceContext) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        return [endpoint_view(e) for e in store.endpoints(tx)]


def _found(found: EndpointRecord | None, endpoint_id: int) -> EndpointRecord:
    if found is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return found


def get_endpoint(ctx: ServiceContext, endpoint_id: int) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return endpoint_view(_found(store.endpoint(tx, endpoint_id), endpoint_id))


def delete_endpoint(ctx: ServiceContext, endpoint_id: int) -> None:
    with ctx.db.transaction() as tx:
        if not store.delete_endpoint(tx, endpoint_id):
            raise NotFound(f"no webhook endpoint {endpoint_id}")


def rotate_secret(ctx: ServiceContext, endpoint_id: int) -> Created:
    """A new secret; the old one keeps signing too for ``secret_overlap_hours``."""
    hours = ctx.webhook_settings.secret_overlap_hours
    until = ctx.clock() + timedelta(hours=hours) if hours > 0 else None
    secret = new_secret()
    with ctx.db.transaction() as tx:
        _found(store.endpoint(tx, endpoint_id), endpoint_id)
        rotated = store.rotate_secret(tx, endpoint_id, secret, until)
        assert rotated is not None
    return Created(endpoint_view(rotated), secret)


def set_enabled(ctx: ServiceContext, endpoint_id: int, enabled: bool) -> dict[str, Any]:
    """Enable an endpoint again (its waiting deliveries go out) or disable it by hand."""
    with ctx.db.transaction() as tx:
        _found(store.endpoint(tx, endpoint_id), endpoint_id)
        reason = None if enabled else "disabled by an admin"
        changed = store.set_active(tx, endpoint_id, enabled, reason, ctx.clock())
        assert changed is not None
        if enabled:
            store.wake_worker(tx)
    return endpoint_view(changed)


# --- deliveries ------------------------------------------------------------------------------


def delivery_view(d: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": d.id,
        "endpoint_id": d.endpoint_id,
        "event_id": d.event_id,
        "type": d.type,
        "sequence": d.sequence,
        "status": d.status,
        "attempt_count": d.attempts,
        "next_attempt_at": d.next_attempt_at if d.status == store.QUEUED else None,
        "queued_at": d.queued_at,
        "delivered_at": d.delivered_at,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "payload": json.loads(d.body),
        "attempts": [
            {
                "at": a.at,
                "outcome": a.outcome,
                "status_code": a.status_code,
                "duration_ms": a.duration_ms,
                "error": a.error,
                "response": a.response,
            }
            for a in d.history
        ],
    }


def deliveries_of(
    ctx: ServiceContext, endpoint_id: int, *, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        _found(store.endpoint(tx, endpoint_id), endpoint_id)
        return [
            delivery_view(d) for d in store.deliveries(tx, endpoint_id, status=status, limit=limit)
        ]


def recent_deliveries(ctx: ServiceContext, *, limit: int = 100) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        return [delivery_view(d) for d in store.deliveries(tx, limit=limit)]


def get_delivery(ctx: ServiceContext, delivery_id: int) -> dict[str, Any]:
    with ctx.db.read() as tx:
        found = store.delivery(tx, delivery_id)
        if found is None:
            raise NotFound(f"no webhook delivery {delivery_id}")
        return delivery_view(found)


def replay(ctx: ServiceContext, delivery_id: int) -> dict[str, Any]:
    """Send a delivery again (the same event and ``webhook-id``), whatever became of it."""
    with ctx.db.transaction() as tx:
        found = store.delivery(tx, delivery_id)
        if found is None:
            raise NotFound(f"no webhook delivery {delivery_id}")
        endpoint = store.endpoint(tx, found.endpoint_id)
        assert endpoint is not None
        if not endpoint.active:
            raise Conflict(
                f"webhook endpoint {endpoint.id} is disabled ({endpoint.disabled_reason}); "
                "enable it first",
                code="endpoint_disabled",
            )
        store.replay(tx, delivery_id, ctx.clock())
        again = store.delivery(tx, delivery_id)
        assert again is not None
        return delivery_view(again)
