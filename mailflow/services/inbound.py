"""Receiving mail: is a recipient ours (at ``RCPT TO``), and keeping what arrives.

``KINDS`` is the registry of address kinds: for each (``bounce``, and ``reply`` next), the
check run at ``RCPT TO`` and the handler run when the message is in. Adding a kind is one
entry here, its address made with ``ctx.addresses.address(kind, payload)``.

``receive`` runs every recipient's handler and keeps the message with each verdict in one
transaction: when it returns, the message and all it did are committed (the SMTP server
answers ``250`` only then).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message

from mailflow.inbound.addresses import Address, AddressBook, UnknownAddress
from mailflow.inbound.bounces import clean
from mailflow.services import bounces, replies
from mailflow.services.context import ServiceContext
from mailflow.services.received import Kind, Received, Verdict
from mailflow.store import inbound as store

log = logging.getLogger(__name__)

KINDS: dict[str, Kind] = {
    "bounce": Kind(check=bounces.check, receive=bounces.receive),
    "reply": Kind(check=replies.check, receive=replies.receive),
}
MAX_HEADERS_KEPT = 64 * 1024


def address_book(ctx: ServiceContext) -> AddressBook:
    if ctx.addresses is None:
        raise RuntimeError("inbound mail is not configured")
    return ctx.addresses


def check_recipient(ctx: ServiceContext, address: str) -> Address:
    """The kind and payload of ``address``; raises ``UnknownAddress`` (→ 550 5.1.1) or
    ``BadSignature`` (→ 550 5.7.1)."""
    found = address_book(ctx).read(address)
    kind = KINDS.get(found.kind)
    if kind is None:
        raise UnknownAddress("no such mailbox")
    kind.check(ctx, found)
    return found


def _header_block(raw: bytes) -> str:
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw[: end if end >= 0 else MAX_HEADERS_KEPT][:MAX_HEADERS_KEPT]
    return head.decode("utf-8", "replace")


def _header(message: Message, name: str, limit: int) -> str:
    """A header as words (RFC 2047 decoded when it can be), one line."""
    try:
        value = message.get(name)
        if value is None:
            return ""
        return clean(str(make_header(decode_header(str(value)))), limit)
    except Exception:  # a header too broken to decode is kept raw in `headers`
        return clean(str(message.get(name, "")), limit)


@dataclass(frozen=True, slots=True)
class Outcome:
    address: Address
    verdict: Verdict
    row_id: int


def receive(
    ctx: ServiceContext, mail_from: str, recipients: Sequence[Address], raw: bytes, peer: str
) -> list[Outcome]:
    """Run each recipient's handler and keep the message with its verdict, in one
    transaction; raises only if that transaction fails (then nothing was kept)."""
    now = ctx.clock()
    first = Received(recipients[0], mail_from, peer, raw, now) if recipients else None
    headers = _header_block(raw)
    subject = _header(first.parsed, "Subject", 1000) if first else ""
    message_id = _header(first.parsed, "Message-ID", 255) if first else ""
    outcomes = []
    with ctx.db.transaction() as tx:
        for address in recipients:
            assert first is not None
            received = first.to(address)
            verdict = KINDS[address.kind].receive(ctx, tx, received)
            row_id = store.add(
                tx,
                received_at=now,
                peer=peer,
                mail_from=mail_from,
                rcpt_to=address.address,
                kind=address.kind,
                size=len(raw),
                message_id=message_id,
                subject=subject,
                headers=headers,
                verdict=verdict.verdict,
                reason=verdict.reason,
                became=verdict.became,
                outbox_id=verdict.outbox_id,
                sale_id=verdict.sale_id,
            )
            outcomes.append(Outcome(address, verdict, row_id))
    for outcome in outcomes:
        verdict = outcome.verdict
        ctx.telemetry.inbound_messages_total.labels(outcome.address.kind, verdict.verdict).inc()
        if verdict.email_outcome is not None and verdict.template is not None:
            ctx.telemetry.emails_total.labels(verdict.template, verdict.email_outcome).inc()
        log.info(
            "inbound %s to %s: %s %s",
            outcome.row_id,
            outcome.address.address,
            outcome.verdict.verdict,
            outcome.verdict.reason,
        )
    return outcomes
