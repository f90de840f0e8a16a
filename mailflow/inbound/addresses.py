"""The addresses mailflow receives at: ``<kind>+<payload>-<signature>@<domain>``.

``kind`` says what the address is for (``bounce``: the VERP return path of one outbox row;
``reply``: a conversation). ``payload`` names the thing (lowercase letters, digits and dots:
an outbox row's id in base 36 for ``bounce``) and the signature is an HMAC over the kind and
the payload, in lowercase base 32, so a token survives an MTA that lowercases local parts. A
local part stays within RFC 5321's 64 characters. The newest secret key signs, every key of
``security.secret_keys`` verifies, as for links.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_LOCAL_PART = 64
SIGNATURE_CHARS = 16
"""80 bits of HMAC-SHA256, base 32."""
_PURPOSE = b"mailflow.inbound-address.v1"
_KIND = re.compile(r"[a-z]{1,16}")
_PAYLOAD = re.compile(r"[a-z0-9.]{1,40}")
_SIGNATURE = re.compile(rf"[a-z2-7]{{{SIGNATURE_CHARS}}}")
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
MAX_ID = 2**63 - 1


class AddressError(Exception):
    """The address is not one mailflow receives at."""

    code = "550 5.1.1"


class UnknownAddress(AddressError):
    """Not at the inbound domain, not ``kind+token``, or an unknown kind or shape."""


class BadSignature(AddressError):
    """Shaped like a token of a known kind, but its signature does not verify."""

    code = "550 5.7.1"


@dataclass(frozen=True, slots=True)
class Address:
    kind: str
    payload: str
    address: str
    """The address as received (as long as RFC 5321 allows; not folded)."""


def to_base36(number: int) -> str:
    if number < 0:
        raise ValueError("negative")
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = _BASE36[rest] + digits
        if not number:
            return digits


def from_base36(text: str) -> int:
    """The number ``text`` (lowercase base 36) writes; ValueError for anything else."""
    if not text or len(text) > 13 or any(c not in _BASE36 for c in text):
        raise ValueError(f"not a base-36 number: {text!r}")
    value = int(text, 36)
    if value > MAX_ID:
        raise ValueError("too large")
    return value


class AddressBook:
    """Makes and reads the signed addresses at ``domain``, for the ``kinds`` known."""

    def __init__(self, secret_keys: Sequence[str], domain: str, kinds: Sequence[str]) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        self.domain = domain.lower()
        self.kinds = frozenset(kinds)
        self._keys = [
            hmac.new(key.encode(), _PURPOSE, hashlib.sha256).digest() for key in secret_keys
        ]

    def _sign(self, key: bytes, kind: str, payload: str) -> str:
        mac = hmac.new(key, f"{kind}:{payload}".encode(), hashlib.sha256).digest()
        return base64.b32encode(mac).decode("ascii").lower()[:SIGNATURE_CHARS]

    def address(self, kind: str, payload: str) -> str:
        """The signed address for ``payload``; ValueError if it cannot be one."""
        if kind not in self.kinds or not _PAYLOAD.fullmatch(payload):
            raise ValueError(f"cannot make a {kind!r} address for {payload!r}")
        local = f"{kind}+{payload}-{self._sign(self._keys[-1], kind, payload)}"
        if len(local) > MAX_LOCAL_PART:
            raise ValueError("local part over 64 characters")
        return f"{local}@{self.domain}"

    def bounce_address(self, outbox_id: int) -> str:
        """The VERP return path of one outbox row."""
        return self.address("bounce", to_base36(outbox_id))

    def read(self, address: str) -> Address:
        """The kind and payload of a received-at address; raises ``UnknownAddress`` or
        ``BadSignature``. Case does not matter (MTAs may lowercase)."""
        text = address.strip()
        if text.startswith("<") and text.endswith(">"):
            text = text[1:-1]
        local, at, domain = text.rpartition("@")
        if not at or domain.lower().rstrip(".") != self.domain or len(local) > MAX_LOCAL_PART:
            raise UnknownAddress(f"not an address of {self.domain}")
        kind, plus, token = local.lower().partition("+")
        payload, dash, signature = token.rpartition("-")
        if (
            not plus
            or not dash
            or kind not in self.kinds
            or not _KIND.fullmatch(kind)
            or not _PAYLOAD.fullmatch(payload)
            or not _SIGNATURE.fullmatch(signature)
        ):
            raise UnknownAddress("no such mailbox")
        if not any(
            hmac.compare_digest(self._sign(key, kind, payload), signature) for key in self._keys
        ):
            raise BadSignature("bad signature")
        return Address(kind=kind, payload=payload, address=text)
