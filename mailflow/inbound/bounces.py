"""Reading delivery status notifications: which addresses failed, for good or for now.

RFC 3464 reports (``multipart/report; report-type=delivery-status``) are read field by field
with the standard library's parser: ``Action``, ``Status``, ``Diagnostic-Code`` and
``Final-Recipient`` of each recipient. Everything else (qmail, Exim's and older Sendmail's
plain-text bounces, Microsoft's, Yahoo's, …) goes to flufl.bounce, GNU Mailman's maintained
collection of detectors, which says which addresses failed permanently or temporarily; the
status code and the diagnostic are then taken from the text when it has them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import Message
from typing import Any

log = logging.getLogger(__name__)

MAX_DIAGNOSTIC = 1000
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_REPLY = re.compile(r"\b([45]\d\d)[ -]+(?:[245]\.\d{1,3}\.\d{1,3}\s+)?\S[^\r\n]{0,300}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]+")


class UnreadableBounce(Exception):
    """The message could not be read as a bounce at all (broken beyond the parser)."""


@dataclass(frozen=True, slots=True)
class Failure:
    address: str
    permanent: bool
    status: str
    """The enhanced status code, ``5.1.1`` (``5.0.0``/``4.0.0`` when none is given)."""
    diagnostic: str


@dataclass(frozen=True, slots=True)
class Report:
    failures: tuple[Failure, ...]
    standard: bool
    """An RFC 3464 report (else read by the heuristics)."""

    @property
    def permanent(self) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if f.permanent)

    @property
    def temporary(self) -> tuple[Failure, ...]:
        return tuple(f for f in self.failures if not f.permanent)


def clean(text: str, limit: int = MAX_DIAGNOSTIC) -> str:
    """One line of printable text (what a diagnostic is shown and kept as)."""
    text = _CONTROL.sub(" ", text.replace("\r", " ").replace("\n", " "))
    return " ".join(text.split())[:limit]


def _value(block: Message, name: str) -> str:
    try:
        value = block.get(name)
    except Exception:
        return ""
    return clean(str(value)) if value is not None else ""


def _typed_address(value: str) -> str:
    """``rfc822; someone@example.com`` → ``someone@example.com``."""
    _type, semicolon, rest = value.partition(";")
    return clean(rest if semicolon else value, 320).strip().strip("<>")


def _delivery_status(message: Message) -> list[Message] | None:
    """The per-recipient blocks of the message's ``message/delivery-status`` part."""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            blocks = [b for b in payload if isinstance(b, Message)]
            return blocks[1:] if len(blocks) > 1 else blocks
        return []
    return None


def _standard(blocks: list[Message]) -> Report:
    failures = []
    for block in blocks:
        action = _value(block, "Action").lower()
        status = _value(block, "Status")
        found = _STATUS.search(status)
        diagnostic = _value(block, "Diagnostic-Code")
        _kind, semicolon, text = diagnostic.partition(";")
        diagnostic = clean(text if semicolon else diagnostic)
        address = _typed_address(
            _value(block, "Final-Recipient") or _value(block, "Original-Recipient")
        )
        if action.startswith("failed"):
            permanent = found is None or found.group(1) == "5"
        elif action.startswith("delayed"):
            permanent = False
        else:
            continue  # delivered, relayed, expanded: not a failure
        code = found.group(0) if found else ("5.0.0" if permanent else "4.0.0")
        if permanent and not code.startswith("5"):
            code = "5.0.0"
        failures.append(Failure(address, permanent, code, diagnostic or f"Action: {action}"))
    return Report(tuple(failures), standard=True)


def _body_text(message: Message) -> str:
    texts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            try:
                raw = part.get_payload(decode=True)
            except Exception:
                continue
            if isinstance(raw, bytes):
                texts.append(raw[:20000].decode("utf-8", "replace"))
    return "\n".join(texts)


def _detected(message: Message) -> tuple[set[Any], set[Any]]:
    """flufl.bounce's ``all_failures``, except that a detector that breaks on a message (some
    do, on hostile input) is skipped instead of ending the scan."""
    from flufl.bounce import _scan

    detectors = getattr(_scan, "_DETECTORS", None)
    if detectors is None:  # pragma: no cover - another layout of the package
        temporary, permanent = _scan.all_failures(message)
        return set(temporary), set(permanent)
    for detector in detectors:
        try:
            temporary, permanent = detector().process(message)
        except Exception as exc:
            log.debug("bounce detector %s failed: %s", detector.__name__, exc)
            continue
        if temporary or permanent:
            return set(temporary), set(permanent)
    return set(), set()


def _heuristic(message: Message) -> Report:
    temporary, permanent = _detected(message)
    if not temporary and not permanent:
        return Report((), standard=False)
    text = _body_text(message)
    found = _STATUS.search(text)
    reply = _SMTP_REPLY.search(text)
    diagnostic = clean(reply.group(0)) if reply else ""
    failures = []
    for addresses, is_permanent in ((permanent, True), (temporary, False)):
        for raw in sorted(addresses):
            address = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            code = found.group(0) if found else ""
            if not code or (code[0] == "5") != is_permanent:
                code = "5.0.0" if is_permanent else "4.0.0"
            failures.append(
                Failure(clean(address, 320), is_permanent, code, diagnostic or "bounced")
            )
    return Report(tuple(failures), standard=False)


def read(message: Message) -> Report:
    """The failures ``message`` reports (none: not a bounce). Raises ``UnreadableBounce``
    only when the message is too broken to be read at all."""
    try:
        if not message.keys():
            # No header at all (random bytes): nothing a mail system would send back, and
            # flufl.bounce's detectors would each scan it for nothing.
            return Report((), standard=False)
        blocks = _delivery_status(message)
        if blocks is not None:
            report = _standard(blocks)
            if report.failures:
                return report
        return _heuristic(message)
    except Exception as exc:  # hostile input: whatever breaks in a parser is unreadable
        log.info("unreadable bounce: %s: %s", type(exc).__name__, exc)
        raise UnreadableBounce(f"{type(exc).__name__}: {exc}") from exc
