"""The sender check of a reply: is it really from the person the reply address was given to?

Two tests, both needed (SPEC §7 "Replies"):

- the ``From`` header holds exactly one address, equal (case-folded) to the party's address;
- when the message came from a trusted relay (its peer address in ``trusted_relays``) and
  carries an ``Authentication-Results`` header with the configured ``authserv_id``, the
  topmost such header (the one that relay added last) says ``dmarc=pass``. With
  ``require_dmarc``, a reply without such a verdict fails too. A verdict header from an
  untrusted peer, or with another authserv-id, is not read: anyone can write one.

A header that holds no ``dmarc`` result at all is no verdict (the relay did not check DMARC).
The answer is a reason code (``Failure``), stored with the rejected message; nothing from the
message is ever echoed back to its sender.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from enum import StrEnum


class Failure(StrEnum):
    NO_FROM = "no_from"
    """No ``From`` header, more than one, or one without exactly one address."""
    NOT_THE_PARTY = "sender_mismatch"
    """The ``From`` address is not the one the reply address was given to."""
    DMARC_FAILED = "dmarc_fail"
    """The trusted relay's verdict is not ``dmarc=pass``."""
    NO_VERDICT = "dmarc_missing"
    """``require_dmarc``: no verdict from a trusted relay."""


@dataclass(frozen=True, slots=True)
class Trust:
    """What the sender check believes: ``[inbound]``'s settings."""

    trusted_relays: Sequence[str]
    authserv_id: str
    require_dmarc: bool = False


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def from_address(message: Message) -> str | None:
    """The one address of the ``From`` header, or None when there is not exactly one.

    Read from the raw header, encoded words left encoded, so a display name (which may
    decode to ``x@y <x@y>`` or carry a line break) can never pass for an address, and a name
    the standard parser refuses does not make the address unreadable."""
    try:
        values = [value for name, value in message.raw_items() if name.lower() == "from"]
    except Exception:  # pragma: no cover - raw_items reads what the parser stored
        return None
    if len(values) != 1:
        return None
    unfolded = re.sub(r"\r?\n[ \t]", " ", str(values[0]))
    # An encoded word is only ever a name or a comment (RFC 2047 §5), never the address:
    # it is left out, whatever ``:``, ``@`` or ``<`` it holds.
    unfolded = _ENCODED_WORD.sub("name", unfolded)
    if any(c in unfolded for c in "\r\n\x00"):
        return None
    found = [addr for _name, addr in getaddresses([unfolded]) if addr]
    if len(found) != 1 or found[0].count("@") != 1 or any(c in found[0] for c in " <>,;"):
        return None
    return found[0]


def check(message: Message, party_email: str, peer: str | None, trust: Trust) -> Failure | None:
    """None when the reply passes, else why it fails."""
    sender = from_address(message)
    if sender is None:
        return Failure.NO_FROM
    if sender.casefold() != party_email.casefold():
        return Failure.NOT_THE_PARTY
    verdict = dmarc_verdict(message, peer, trust)
    if verdict is None:
        return Failure.NO_VERDICT if trust.require_dmarc else None
    return None if verdict == "pass" else Failure.DMARC_FAILED


def is_trusted(peer: str | None, networks: Sequence[str]) -> bool:
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    for network in networks:
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def dmarc_verdict(message: Message, peer: str | None, trust: Trust) -> str | None:
    """The ``dmarc`` result (lowercase) of the topmost ``Authentication-Results`` header with
    ``trust.authserv_id``, when ``peer`` is a trusted relay; None when there is none."""
    if not trust.authserv_id or not is_trusted(peer, trust.trusted_relays):
        return None
    try:
        values = message.get_all("Authentication-Results") or []
    except Exception:
        return None
    for value in values:
        parsed = parse_authentication_results(str(value))
        if parsed is None or parsed[0].casefold() != trust.authserv_id.casefold():
            continue
        verdict: str | None = parsed[1].get("dmarc")
        return verdict
    return None


_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:/\s*\d+\s*)?=\s*([A-Za-z0-9_-]+)")


def parse_authentication_results(value: str) -> tuple[str, dict[str, str]] | None:
    """``(authserv_id, {method: result})`` of one ``Authentication-Results`` value
    (RFC 8601), the first result of each method; None if it has no authserv-id."""
    text = " ".join(value.split())
    for _ in range(8):  # comments may nest; a few rounds remove them
        stripped = _COMMENT.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    head, *results = text.split(";")
    words = head.split()
    if not words:
        return None
    methods: dict[str, str] = {}
    for result in results:
        found = _RESULT.match(result)
        if found:
            methods.setdefault(found.group(1).lower(), found.group(2).lower())
    return words[0].strip('"'), methods
