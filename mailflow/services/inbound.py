"""Receiving mail: is a recipient ours (at ``RCPT TO``), and keeping what arrives.

``KINDS`` is the registry of address kinds: for each (``bounce``, ``reply``), the
check run at ``RCPT TO`` and the handler run when the message is in. Adding a kind is one
entry here, its address made with ``ctx.addresses.address(kind, payload)``.

``receive`` runs every recipient's handler and keeps the message with each verdict in one
transaction: when it returns, the message and all it did are committed (the SMTP server
answers ``250`` only then). ``receive_many`` keeps the messages that arrived together in one
transaction, each under a savepoint.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header
from email.message import Message

from mailflow.inbound.addresses import Address, AddressBook, UnknownAddress
from mailflow.inbound.bounces import clean
from mailflow.services import bounces, replies
from mailflow.services.context import ServiceContext
from mailflow.services.received import Kind, Received, Verdict
from mailflow.store import inbound as store
from mailflow.store.database import Transaction

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


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message as the SMTP server accepted it, waiting to be kept."""

    mail_from: str
    recipients: Sequence[Address]
    raw: bytes
    peer: str


def receive(
    ctx: ServiceContext, mail_from: str, recipients: Sequence[Address], raw: bytes, peer: str
) -> list[Outcome]:
    """Run each recipient's handler and keep the message with its verdict, in one
    transaction; raises only if that transaction fails (then nothing was kept)."""
    [kept] = receive_many(ctx, [Incoming(mail_from, recipients, raw, peer)])
    if isinstance(kept, BaseException):
        raise kept
    return kept


def receive_many(
    ctx: ServiceContext, messages: Sequence[Incoming]
) -> list[list[Outcome] | Exception]:
    """Keep several messages in one transaction (group commit), each under a savepoint: a
    message whose handling fails is undone alone and answered with its exception. Raises
    only if the transaction fails, and then none of them was kept."""
    now = ctx.clock()
    results: list[list[Outcome] | Exception] = []
    with ctx.db.transaction() as tx:
        for message in messages:
            try:
                with tx.begin_nested():
                    results.append(_keep(ctx, tx, message, now))
            except Exception as exc:
                log.exception("inbound: could not keep a message")
                results.append(exc)
    for result in results:
        if not isinstance(result, Exception):
            _count(ctx, result)
    return results


def _keep(ctx: ServiceContext, tx: Transaction, message: Incoming, now: datetime) -> list[Outcome]:
    if not message.recipients:
        return []
    raw = message.raw
    first = Received(message.recipients[0], message.mail_from, message.peer, raw, now)
    headers = _header_block(raw)
    subject = _header(first.parsed, "Subject", 1000)
    message_id = _header(first.parsed, "Message-ID", 255)
    outcomes = []
    for address in message.recipients:
        received = first.to(address)
        verdict = KINDS[address.kind].receive(ctx, tx, received)
        row_id = store.add(
            tx,
            received_at=now,
            peer=message.peer,
            mail_from=message.mail_from,
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
    return outcomes


def _count(ctx: ServiceContext, outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        verdict = outcome.verdict
        ctx.telemetry.inbound_messages_total.labels(outcome.address.kind, verdict.verdict).inc()
        if verdict.email_outcome is not None and verdict.template is not None:
            ctx.telemetry.emails_total.labels(verdict.template, verdict.email_outcome).inc()
        log.info(
            "inbound %s to %s: %s %s",
            outcome.row_id,
            outcome.address.address,
            verdict.verdict,
            verdict.reason,
        )
