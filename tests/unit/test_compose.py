"""MIME composition, checked against the standard library's parser."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow.mail.compose import AddressError, address, compose, new_message_id, one_line


def _compose(**overrides: str) -> bytes:
    fields = {
        "sender": address("Marketplace", "no-reply@market.example"),
        "recipient": address("Éloïse Müller", "eloise@example.org"),
        "subject": "Nouvelle vente n° 12 : Le Petit Prince",
        "text": "Bonjour,\nMontant : 12,50\u00a0€\n.\nFrom the start\n" + "x" * 200,
        "html": "<p>Bonjour <b>Éloïse</b></p>",
        "message_id": "<abc@market.example>",
        "template": "seller_new_sale",
    }
    fields.update(overrides)
    return compose(date=datetime(2026, 11, 27, 9, 0, tzinfo=UTC), **fields)


def test_parses_with_every_header_and_both_parts() -> None:
    raw = _compose()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "Nouvelle vente n° 12 : Le Petit Prince"
    assert message["To"].addresses[0].display_name == "Éloïse Müller"
    assert message["To"].addresses[0].addr_spec == "eloise@example.org"
    assert message["Message-ID"] == "<abc@market.example>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Mailflow-Template"] == "seller_new_sale"
    assert message["Date"].datetime == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    assert "Montant : 12,50\u00a0€" in text and "x" * 200 in text
    assert message.get_body(("html",)).get_content().strip() == "<p>Bonjour <b>Éloïse</b></p>"


def test_line_breaks_in_subject_never_make_a_header() -> None:
    raw = _compose(subject="Hello\r\nBcc: victim@example.org")
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Bcc"] is None
    assert message["Subject"] == "Hello Bcc: victim@example.org"


def test_line_breaks_in_a_display_name_are_folded() -> None:
    header = address("Bob\r\nBcc: victim@example.org", "bob@example.org")
    assert "\r" not in header and "\n" not in header


@pytest.mark.parametrize("bad", ["a@b.example\r\nBcc: x@y.example", "no-at-sign", "<a@b.example>"])
def test_bad_addresses_are_refused(bad: str) -> None:
    with pytest.raises(AddressError):
        address("Name", bad)


def test_message_ids_are_unique_and_use_the_sender_domain() -> None:
    ids = {new_message_id("no-reply@market.example") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.endswith("@market.example>") for i in ids)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300))
def test_any_subject_survives_encoding_in_words_on_short_lines(subject: str) -> None:
    raw = _compose(subject=subject)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines = head.split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("Subject: "))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith(" "))
    if not one_line(subject).isascii():
        # Encoded words of at most 75 characters, one a line (RFC 2047 §2).
        assert all(len(line) <= 78 for line in lines[start:end])
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == one_line(subject)
