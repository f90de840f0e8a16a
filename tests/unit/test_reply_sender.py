"""The reply address (signed, bound to one sale and one party, rotating, lowercase-proof, at
most 64 characters before the @) and the sender check (From, a trusted relay's DMARC
verdict, require_dmarc), without a server."""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

import pytest

from mailflow.domain.conversation import Author
from mailflow.inbound.addresses import AddressBook, BadSignature, UnknownAddress
from mailflow.inbound.replyto import ReplyToken, payload_of, reply_address, token_of
from mailflow.inbound.sender import (
    Failure,
    Trust,
    check,
    from_address,
    parse_authentication_results,
)

OLD = "old-key-" + "o" * 40
NEW = "new-key-" + "n" * 40
DOMAIN = "reply.market.example"
TRUST = Trust(("127.0.0.1/32", "::1/128"), "mx.market.example")


def _book(*keys: str) -> AddressBook:
    return AddressBook(list(keys), DOMAIN, ["bounce", "reply"])


class TestReplyAddress:
    def test_bound_to_one_sale_and_one_party(self) -> None:
        book = _book(NEW)
        for token in (
            ReplyToken(1, Author.BUYER),
            ReplyToken(2**31 - 1, Author.SELLER),
            ReplyToken(42, Author.SELLER, commands=True),
        ):
            address = reply_address(book, token)
            local = address.partition("@")[0]
            assert len(local) <= 64 and address == address.lower()
            found = book.read(address.upper())  # an MTA that changes case
            assert token_of(found.payload) == token

    def test_a_changed_sale_or_party_is_a_bad_signature(self) -> None:
        book = _book(NEW)
        address = reply_address(book, ReplyToken(41, Author.BUYER))
        for forged in (address.replace("15.b-", "16.b-"), address.replace(".b-", ".s-")):
            assert forged != address
            with pytest.raises(BadSignature):
                book.read(forged)

    def test_keys_rotate_like_links(self) -> None:
        old = reply_address(_book(OLD), ReplyToken(7, Author.SELLER))
        assert _book(OLD, NEW).read(old).payload == "7.s"
        with pytest.raises(BadSignature):
            _book(NEW).read(old)

    def test_no_address_for_customer_service_or_a_buyer_command(self) -> None:
        with pytest.raises(ValueError):
            payload_of(ReplyToken(1, Author.SUPPORT))
        with pytest.raises(ValueError):
            payload_of(ReplyToken(1, Author.BUYER, commands=True))

    @pytest.mark.parametrize("payload", ["7", "7.x", "0.s", ".s", "zzzzzzzzzzzzzz.s", "7.sb"])
    def test_other_payloads_are_not_tokens(self, payload: str) -> None:
        with pytest.raises(ValueError):
            token_of(payload)

    def test_another_domain_is_unknown(self) -> None:
        address = reply_address(_book(NEW), ReplyToken(7, Author.SELLER))
        with pytest.raises(UnknownAddress):
            _book(NEW).read(address.replace(DOMAIN, "other.example"))


def _message(sender: str, *results: str) -> EmailMessage:
    message = EmailMessage()
    for value in results:
        message["Authentication-Results"] = value
    message["From"] = sender
    message.set_content("x")
    return message


class TestSenderCheck:
    def test_the_party_passes_whatever_the_case_and_the_display_name(self) -> None:
        assert (
            check(
                _message("Jean <Vendeur@Shop.Example>"), "vendeur@shop.example", "10.0.0.9", TRUST
            )
            is None
        )

    def test_another_address_fails(self) -> None:
        failure = check(_message("someone@else.example"), "vendeur@shop.example", None, TRUST)
        assert failure is Failure.NOT_THE_PARTY

    def test_a_trusted_relays_verdict_must_be_pass(self) -> None:
        fail = _message("v@shop.example", "mx.market.example; dmarc=fail header.from=shop.example")
        ok = _message("v@shop.example", "mx.market.example; dmarc=pass (p=none) header.from=x")
        assert check(fail, "v@shop.example", "127.0.0.1", TRUST) is Failure.DMARC_FAILED
        assert check(ok, "v@shop.example", "127.0.0.1", TRUST) is None
        # The topmost header with our authserv-id is the one our relay wrote.
        both = _message(
            "v@shop.example",
            "mx.market.example; dmarc=fail",
            "mx.market.example; dmarc=pass",
        )
        assert check(both, "v@shop.example", "::ffff:127.0.0.1", TRUST) is Failure.DMARC_FAILED

    def test_verdicts_from_elsewhere_are_not_read(self) -> None:
        fail = _message("v@shop.example", "mx.market.example; dmarc=fail")
        assert check(fail, "v@shop.example", "203.0.113.5", TRUST) is None
        other = _message("v@shop.example", "evil.example; dmarc=fail")
        assert check(other, "v@shop.example", "127.0.0.1", TRUST) is None
        strict = Trust(TRUST.trusted_relays, TRUST.authserv_id, require_dmarc=True)
        assert check(fail, "v@shop.example", "203.0.113.5", strict) is Failure.NO_VERDICT
        no_dmarc = _message("v@shop.example", "mx.market.example; spf=pass smtp.mailfrom=x")
        assert check(no_dmarc, "v@shop.example", "127.0.0.1", strict) is Failure.NO_VERDICT

    @pytest.mark.parametrize(
        "raw",
        [
            b"From: a@x.example, b@x.example\r\n",
            b"From: a@x.example\r\nFrom: a@x.example\r\n",
            b"Subject: no from\r\n",
            b"From: undisclosed-recipients:;\r\n",
            b"From: =?utf-8?q?a@x.example_<a@x.example>?= <evil@y.example>\r\n",
        ],
    )
    def test_a_from_that_is_not_exactly_one_address(self, raw: bytes) -> None:
        message = BytesParser(policy=default).parsebytes(raw + b"\r\nbody")
        found = from_address(message)
        assert found in (None, "evil@y.example")
        assert check(message, "a@x.example", None, TRUST) is not None

    def test_authentication_results_parsing(self) -> None:
        value = (
            'mx.market.example 1; spf=pass (sender "x" ok) smtp.mailfrom=shop.example;\r\n '
            "dkim=pass header.d=shop.example; DMARC=Pass (p=reject dis=none) header.from=x"
        )
        assert parse_authentication_results(value) == (
            "mx.market.example",
            {"spf": "pass", "dkim": "pass", "dmarc": "pass"},
        )
        assert parse_authentication_results("") is None
        assert parse_authentication_results("mx; none") == ("mx", {})


def test_require_dmarc_without_an_authserv_id_is_a_configuration_error() -> None:
    from mailflow.config import ConfigError, load

    with pytest.raises(ConfigError, match=r"inbound.*require_dmarc = true needs authserv_id"):
        load(environ={"MAILFLOW_INBOUND__REQUIRE_DMARC": "true"}, create_dev_secrets=False)
    settings = load(
        environ={
            "MAILFLOW_INBOUND__REQUIRE_DMARC": "true",
            "MAILFLOW_INBOUND__AUTHSERV_ID": "mx.market.example",
            "MAILFLOW_SECURITY__SECRET_KEYS": f'["{NEW}"]',
        },
        create_dev_secrets=False,
    ).settings
    assert settings.inbound.require_dmarc and settings.inbound.authserv_id == "mx.market.example"
