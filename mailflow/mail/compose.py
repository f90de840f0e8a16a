"""MIME composition: a multipart/alternative message, as bytes ready for SMTP.

Built directly rather than through ``email.message.EmailMessage`` because composing is on the
hot path of every state change and the standard builder costs several times the render; the
output is checked against the standard parser in the tests. Header values never carry CR or
LF: names and subjects are folded onto one line, addresses with them are refused.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime, formataddr, parseaddr

CRLF = "\r\n"


class AddressError(ValueError):
    """An address that cannot go into a header."""


_LINE_BREAKS = re.compile(r"[\r\n\t\v\f\x1c-\x1e\x85\u2028\u2029]+")


def one_line(value: str) -> str:
    """``value`` on one line: line breaks become spaces (non-breaking spaces are kept)."""
    return _LINE_BREAKS.sub(" ", value).strip()


_WORD_BYTES = 39
"""UTF-8 bytes per encoded word: 52 characters of base64, 64 with ``=?utf-8?b?…?=``, so a
line stays under 76 even after ``Subject: ``."""


def _header_value(value: str) -> str:
    value = one_line(value)
    if value.isascii():
        return value
    # Encoded words of at most 75 characters, folded with CRLF (RFC 2047 §2, RFC 5322 §2.1.1),
    # each holding whole characters (a character's bytes never straddle two words, §5).
    words: list[str] = []
    chunk = bytearray()
    for char in value:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            words.append(_encoded_word(chunk))
            chunk = bytearray()
        chunk += encoded
    words.append(_encoded_word(chunk))
    return (CRLF + " ").join(words)


def _encoded_word(data: bytes | bytearray) -> str:
    return "=?utf-8?b?" + binascii.b2a_base64(data, newline=False).decode("ascii") + "?="


def address(display_name: str, addr: str) -> str:
    """``Name <addr>``, the name encoded if needed; refuses addresses with line breaks."""
    if any(c in addr for c in "\r\n<>") or "@" not in addr:
        raise AddressError(f"not a valid address: {addr!r}")
    return formataddr((one_line(display_name), addr), charset="utf-8")


def _checked_header(value: str) -> str:
    """A formatted header value, refused if it could break out of its line."""
    if any(c in value for c in "\r\n\x00"):
        raise AddressError(f"not a one-line header value: {value!r}")
    return value


def split_address(value: str) -> tuple[str, str]:
    """``("Name", "addr")`` from ``"Name <addr>"`` or a bare address."""
    name, addr = parseaddr(value)
    if not addr or "@" not in addr:
        raise AddressError(f"not a valid address: {value!r}")
    return name, addr


def domain_of(addr: str) -> str:
    return addr.rpartition("@")[2] or "localhost"


def new_message_id(sender_addr: str) -> str:
    return f"<{secrets.token_hex(16)}@{domain_of(sender_addr)}>"


def _qp(text: str) -> str:
    data = text.replace("\r\n", "\n").encode("utf-8")
    return binascii.b2a_qp(data).decode("ascii").replace("\n", CRLF)


def compose(
    *,
    sender: str,
    recipient: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    date: datetime,
    template: str,
    headers: Sequence[tuple[str, str]] = (),
    reply_to: str | None = None,
) -> bytes:
    """The whole message. ``sender``, ``recipient`` and ``reply_to`` are already-formatted
    header values (``address``); ``headers`` are more (name, value) pairs, placed after
    ``X-Mailflow-Template``. Every message says it is automatic (RFC 3834's
    ``Auto-Submitted``, and ``X-Auto-Response-Suppress`` for Exchange), so that out-of-office
    answers do not loop back."""
    boundary = "=_mf_" + secrets.token_hex(12)
    extra = [f"{one_line(name)}: {_header_value(value)}" for name, value in headers]
    lines = [
        f"From: {sender}",
        f"To: {recipient}",
        *([f"Reply-To: {_checked_header(reply_to)}"] if reply_to is not None else []),
        f"Subject: {_header_value(subject)}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        "Auto-Submitted: auto-generated",
        "X-Auto-Response-Suppress: All",
        f"X-Mailflow-Template: {one_line(template)}",
        *extra,
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
        f"--{boundary}",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        _qp(text),
        f"--{boundary}",
        'Content-Type: text/html; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        _qp(html),
        f"--{boundary}--",
        "",
    ]
    return CRLF.join(lines).encode("ascii")
