"""The inbound readers: signed addresses, auto-reply signs, delivery status notifications."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow.inbound import bounces
from mailflow.inbound.addresses import (
    MAX_ID,
    AddressBook,
    BadSignature,
    UnknownAddress,
    from_base36,
    to_base36,
)
from mailflow.inbound.autoreply import is_auto_reply
from tests.inbound_support import dsn

KEYS = ["k" * 40]
DOMAIN = "reply.market.example"


def book(keys: list[str] = KEYS) -> AddressBook:
    return AddressBook(keys, DOMAIN, ["bounce", "reply"])


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    return message


# -- addresses ------------------------------------------------------------------------------


def test_a_bounce_address_reads_back_whatever_its_case_and_fits_64_characters() -> None:
    address = book().bounce_address(MAX_ID)
    local = address.partition("@")[0]
    assert len(local) <= 64
    for seen in (address, address.upper(), f"<{address}>", address.replace(DOMAIN, DOMAIN + ".")):
        found = book().read(seen)
        assert (found.kind, from_base36(found.payload)) == ("bounce", MAX_ID)


def test_keys_rotate_like_links_the_newest_signs_every_one_verifies() -> None:
    old = book(["o" * 40]).bounce_address(7)
    rotated = book(["o" * 40, "n" * 40])
    assert from_base36(rotated.read(old).payload) == 7
    assert rotated.bounce_address(7) != old
    with pytest.raises(BadSignature):
        book(["n" * 40]).read(old)


@pytest.mark.parametrize(
    "address",
    [
        "bounce+1@reply.market.example",
        "bounce1-aaaaaaaaaaaaaaaa@reply.market.example",
        "other+1-aaaaaaaaaaaaaaaa@reply.market.example",
        "bounce+1-aaaaaaaaaaaaaaaa@elsewhere.example",
        "bounce+1-aaaaaaaaaaaaaaa1@reply.market.example",
        "bounce+" + "1" * 60 + "-aaaaaaaaaaaaaaaa@reply.market.example",
        "",
        "@",
        "bounce+-@reply.market.example",
    ],
)
def test_anything_not_made_here_is_unknown(address: str) -> None:
    with pytest.raises(UnknownAddress):
        book().read(address)


def test_a_token_for_another_kind_or_payload_does_not_verify() -> None:
    address = book().address("reply", "12.s")
    local, _, domain = address.partition("@")
    signature = local.rpartition("-")[2]
    with pytest.raises(BadSignature):
        book().read(f"bounce+12.s-{signature}@{domain}")
    with pytest.raises(BadSignature):
        book().read(f"reply+13.s-{signature}@{domain}")


@given(st.integers(min_value=0, max_value=MAX_ID))
def test_base36_round_trips(number: int) -> None:
    assert from_base36(to_base36(number)) == number


@given(st.text(max_size=80))
@settings(max_examples=200)
def test_reading_any_text_either_finds_an_address_or_says_why(text: str) -> None:
    try:
        found = book().read(text)
    except (UnknownAddress, BadSignature):
        return
    assert found.kind in ("bounce", "reply")  # pragma: no cover - a forged signature


# -- auto-replies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "mail_from", "why"),
    [
        ("Auto-Submitted: auto-replied\r\n", "a@b.example", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: No\r\n", "a@b.example", None),
        ("X-Autoreply: yes\r\n", "a@b.example", "X-Autoreply"),
        ("X-Autorespond: yes\r\n", "a@b.example", "X-Autorespond"),
        ("Precedence: Bulk\r\n", "a@b.example", "Precedence: bulk"),
        ("Precedence: auto_reply\r\n", "a@b.example", "Precedence: auto_reply"),
        ("Precedence: first-class\r\n", "a@b.example", None),
        ("List-Id: <sellers.market.example>\r\n", "a@b.example", "List-Id"),
        ("", "", "empty envelope sender"),
        ("", "<>", "empty envelope sender"),
        ("", "a@b.example", None),
    ],
)
def test_rfc_3834_signs(headers: str, mail_from: str, why: str | None) -> None:
    message = parse(f"From: a@b.example\r\n{headers}Subject: x\r\n\r\nbody\r\n".encode())
    assert is_auto_reply(message, mail_from) == why


# -- bounces --------------------------------------------------------------------------------


def test_an_rfc_3464_failure_is_permanent_with_its_code_and_diagnostic() -> None:
    report = bounces.read(parse(dsn("x@y", "gone@shop.example")))
    [failure] = report.failures
    assert report.standard and failure.permanent
    assert (failure.address, failure.status) == ("gone@shop.example", "5.1.1")
    assert failure.diagnostic.startswith("550 5.1.1 <gone@shop.example>")


def test_a_delayed_report_is_temporary_and_a_delivered_one_is_no_failure() -> None:
    delayed = bounces.read(parse(dsn("x@y", "slow@shop.example", action="delayed", status="4.4.7")))
    assert [(f.permanent, f.status) for f in delayed.failures] == [(False, "4.4.7")]
    delivered = bounces.read(
        parse(dsn("x@y", "ok@shop.example", action="delivered", status="2.0.0"))
    )
    assert delivered.failures == ()


def test_a_diagnostic_is_one_line_of_printable_text() -> None:
    raw = dsn("x@y", "a@b.example", diagnostic="smtp; 550 bad\x07 \x1b[31mred\x1b[0m")
    [failure] = bounces.read(parse(raw)).failures
    assert "\x1b" not in failure.diagnostic and "\x07" not in failure.diagnostic


@given(st.binary(max_size=3000))
@settings(max_examples=300, deadline=None)
def test_any_bytes_are_read_without_an_exception_but_unreadable_bounce(raw: bytes) -> None:
    try:
        report = bounces.read(parse(raw))
    except bounces.UnreadableBounce:
        return
    for failure in report.failures:
        assert failure.status[0] in "45" and len(failure.diagnostic) <= bounces.MAX_DIAGNOSTIC
