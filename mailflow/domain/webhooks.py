"""Webhooks' rules: the event catalogue, Standard Webhooks signatures, which addresses an
endpoint may not reach, and the retry schedule. Standard library only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
RESPONSE_KEPT_BYTES = 2048
"""The first 2 KB of an endpoint's answer are kept with each attempt."""


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    subject: str
    """What ``sequence`` counts: ``sale``, ``seller`` or ``listing``."""
    data: str
    """What ``data`` holds, in words (docs/webhooks.md)."""


CATALOGUE: tuple[EventType, ...] = (
    EventType("sale.created", "sale", "the sale, as GET /api/v1/sales/{id}"),
    EventType("sale.accepted", "sale", "the sale, as GET /api/v1/sales/{id}"),
    EventType("sale.refused", "sale", "the sale, as GET /api/v1/sales/{id}"),
    EventType("sale.expired", "sale", "the sale, as GET /api/v1/sales/{id}"),
    EventType("sale.cancelled", "sale", "the sale, as GET /api/v1/sales/{id}"),
    EventType("sale.withdrawn", "sale", "the sale, as GET /api/v1/sales/{id}"),
    EventType("sale.shipped", "sale", "the sale, as GET /api/v1/sales/{id}"),
    EventType(
        "listing.deactivated",
        "listing",
        "the listing, as GET /api/v1/sellers/{seller_id}/listings/{sku}, with its id",
    ),
    EventType(
        "seller.tier_changed",
        "seller",
        "the seller's stats, as GET /api/v1/sellers/{id}/stats, with the tier before",
    ),
    EventType(
        "email.bounced",
        "sale",
        'the email as the sale\'s "emails" list shows it ({"key", "to", "status", '
        '"message_id", "bounce"}), with "sale_id"',
    ),
    EventType(
        "message.received",
        "sale",
        'the message, as GET /api/v1/sales/{id}/messages lists it ({"id", "from", "body", '
        '"received_at", "status"}), with "sale_id"',
    ),
)
EVENT_TYPES = frozenset(t.name for t in CATALOGUE)
WILDCARD = "*"


def subscribes(filters: list[str], event_type: str) -> bool:
    return WILDCARD in filters or event_type in filters


def new_secret() -> str:
    """A fresh ``whsec_`` secret: 32 random bytes, base64 (as the Standard Webhooks
    libraries read it)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` (Standard Webhooks)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets_: list[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """Every secret's signature, space-separated: during a rotation's overlap the old and the
    new secret both sign, so a receiver holding either verifies."""
    return " ".join(signature(s, webhook_id, timestamp, body) for s in secrets_)


METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


def forbidden_address(address: str) -> str | None:
    """Why an endpoint may not be reached at ``address`` (an IP), or None when it may:
    loopback, private, link-local, cloud metadata, and every other address that is not
    globally routable (unspecified, reserved, multicast, shared CGNAT space)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "not a public address"
    return None


def next_attempt(
    created_at: datetime, attempts: int, now: datetime, base_seconds: float, give_up: timedelta
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts: ``base_seconds`` doubling; None
    once ``give_up`` has passed since the event (the last try is at that moment)."""
    if now - created_at >= give_up:
        return None
    delay = timedelta(seconds=base_seconds * 2 ** min(max(attempts - 1, 0), 30))
    return min(now + delay, created_at + give_up)
