"""Receiving mail: is a recipient ours (at ``RCPT TO``), spooling what arrives, handling it.

``KINDS`` is the registry of address kinds: for each (``bounce``, ``reply``), the
check run at ``RCPT TO`` and the handler run for what arrives. Adding a kind is one
entry here, its address made with ``ctx.addresses.address(kind, payload)``.

``spool`` keeps the messages that arrived together in the spool (``store.spool``), in one
statement and one transaction (group commit). When it returns they are committed, and the
SMTP server answers ``250``: accepted means durable, as in Postfix's queue. ``process`` then
handles spooled messages, a batch per transaction: every recipient's handler runs, a row
keeps the message with its verdict (``store.inbound``) and the message leaves the spool, so
what a message did and the record of it commit together. A message whose handling fails
stays in the spool and is tried again later; after ``MAX_ATTEMPTS`` it is kept with the
verdict ``failed`` and the error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message

from mailflow.inbound.addresses import Address, AddressBook, AddressError, UnknownAddress
from mailflow.inbound.bounces import clean
from mailflow.services import bounces, replies
from mailflow.services.context import ServiceContext
from mailflow.services.received import Kind, Received, Verdict
from mailflow.store import inbound as store
from mailflow.store import spool as spool_store
from mailflow.store.database import Transaction
from mailflow.telemetry import Telemetry

log = logging.getLogger(__name__)

KINDS: dict[str, Kind] = {
    "bounce": Kind(check=bounces.check, receive=bounces.receive),
    "reply": Kind(check=replies.check, receive=replies.receive),
}
MAX_HEADERS_KEPT = 64 * 1024
MAX_ATTEMPTS = 5
RETRY_AFTER = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
)
"""How long a message whose handling failed waits before its next try."""
FAILED = "failed"


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
    """What became of one recipient of a handled message, and the row that keeps it."""

    kind: str
    verdict: Verdict
    row_id: int


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message as the SMTP server accepted it, waiting to be spooled."""

    mail_from: str
    recipients: Sequence[Address]
    raw: bytes
    peer: str


def spool(ctx: ServiceContext, messages: Sequence[Incoming]) -> list[int]:
    """Keep ``messages`` in the spool, in one statement and one transaction; their spool
    ids. Raises if the transaction fails: then none was kept."""
    now = ctx.clock()
    spooled = [
        spool_store.New(
            received_at=now,
            peer=m.peer,
            mail_from=m.mail_from,
            recipients=[address.address for address in m.recipients],
            raw=m.raw,
        )
        for m in messages
    ]
    with ctx.db.transaction() as tx:
        return spool_store.add(tx, spooled)


@dataclass(frozen=True, slots=True)
class Processed:
    taken: int
    """How many spooled messages were taken (handled, or put off after a failure); 0: none
    was due."""
    outcomes: list[Outcome]
    """What became of each recipient of those handled (or failed for good)."""


def process(ctx: ServiceContext, limit: int = 16) -> Processed:
    """Handle up to ``limit`` spooled messages that are due, in one transaction.

    The batch is first handled in one go; if a handler fails, the transaction is rolled back
    and the batch handled again with a savepoint per message, so that the failing one alone
    is put off (savepoints cost two round trips each on PostgreSQL, hence not by default)."""
    try:
        taken, outcomes = _process(ctx, limit, apart=False)
    except _HandlerFailed:
        taken, outcomes = _process(ctx, limit, apart=True)
    for outcome in outcomes:
        verdict = outcome.verdict
        log.info("inbound %s: %s %s", outcome.row_id, verdict.verdict, verdict.reason)
    return Processed(taken, outcomes)


class _HandlerFailed(Exception):
    """A handler failed while a batch was handled in one go."""


def _process(ctx: ServiceContext, limit: int, *, apart: bool) -> tuple[int, list[Outcome]]:
    now = ctx.clock()
    book = address_book(ctx)
    outcomes: list[Outcome] = []
    with ctx.db.transaction() as tx:
        claimed = spool_store.claim(tx, now, limit)
        if not claimed:
            return 0, []
        done = []
        for message in claimed:
            if not apart:
                try:
                    outcomes += _handle(ctx, tx, book, message)
                except Exception as exc:
                    raise _HandlerFailed from exc
                done.append(message.id)
                continue
            try:
                with tx.begin_nested():
                    outcomes += _handle(ctx, tx, book, message)
            except Exception as exc:
                log.exception("inbound: could not handle spooled message %s", message.id)
                outcomes += _put_off(tx, message, exc, now)
                continue
            done.append(message.id)
        spool_store.remove(tx, done)
    return len(claimed), outcomes


def _handle(
    ctx: ServiceContext, tx: Transaction, book: AddressBook, message: spool_store.Spooled
) -> list[Outcome]:
    first: Received | None = None
    outcomes = []
    for rcpt_to in message.recipients:
        try:
            address = book.read(rcpt_to)
        except AddressError as exc:  # its key was retired since (checked at RCPT time)
            verdict = Verdict("unknown", str(exc))
            outcomes.append(_keep(tx, message, rcpt_to, "unknown", verdict, None))
            continue
        if address.kind not in KINDS:
            verdict = Verdict("unknown", "no such mailbox")
            outcomes.append(_keep(tx, message, rcpt_to, address.kind, verdict, None))
            continue
        received = (
            Received(address, message.mail_from, message.peer, message.raw, message.received_at)
            if first is None
            else first.to(address)
        )
        first = received
        verdict = KINDS[address.kind].receive(ctx, tx, received)
        outcomes.append(_keep(tx, message, rcpt_to, address.kind, verdict, received.parsed))
    return outcomes


def _keep(
    tx: Transaction,
    message: spool_store.Spooled,
    rcpt_to: str,
    kind: str,
    verdict: Verdict,
    parsed: Message | None,
) -> Outcome:
    """The received message's row for one recipient, with its verdict."""
    row_id = store.add(
        tx,
        received_at=message.received_at,
        peer=message.peer,
        mail_from=message.mail_from,
        rcpt_to=rcpt_to,
        kind=kind,
        size=len(message.raw),
        message_id=_header(parsed, "Message-ID", 255) if parsed is not None else "",
        subject=_header(parsed, "Subject", 1000) if parsed is not None else "",
        headers=_header_block(message.raw),
        verdict=verdict.verdict,
        reason=verdict.reason,
        became=verdict.became,
        outbox_id=verdict.outbox_id,
        sale_id=verdict.sale_id,
        spool_id=message.id,
    )
    return Outcome(kind, verdict, row_id)


def _put_off(
    tx: Transaction, message: spool_store.Spooled, error: Exception, now: datetime
) -> list[Outcome]:
    """A message whose handling failed: tried again later, or kept with the verdict
    ``failed`` once it has failed ``MAX_ATTEMPTS`` times (then its outcomes)."""
    attempts = message.attempts + 1
    reason = clean(f"{type(error).__name__}: {error}", 2000)
    if attempts < MAX_ATTEMPTS:
        wait = RETRY_AFTER[min(attempts, len(RETRY_AFTER)) - 1]
        spool_store.postpone(tx, message.id, attempts=attempts, not_before=now + wait, error=reason)
        return []
    verdict = Verdict(FAILED, f"{attempts} tries: {reason}")
    outcomes = []
    for rcpt_to in message.recipients:
        kind = rcpt_to.partition("+")[0].lower()[:16]
        outcomes.append(_keep(tx, message, rcpt_to, kind, verdict, None))
    spool_store.remove(tx, [message.id])
    return outcomes


def count(
    telemetry: Telemetry,
    kind: str,
    verdict: str,
    template: str | None,
    email_outcome: str | None,
) -> None:
    """One handled recipient in ``mailflow_inbound_messages_total`` (and its email's outcome
    in ``mailflow_emails_total``, a bounce)."""
    telemetry.inbound_messages_total.labels(kind, verdict).inc()
    if email_outcome is not None and template is not None:
        telemetry.emails_total.labels(template, email_outcome).inc()
