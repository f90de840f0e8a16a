"""LinkSigner on its own: signing, verifying, expiry, purposes and key rotation (no database)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from mailflow.links import (
    SALE_ACTION,
    SELLER_LOGIN,
    ExpiredLink,
    InvalidLink,
    LinkSigner,
    SaleLink,
)
from tests.support import MovableClock

OLD_KEY = "old-key-" + "o" * 40
NEW_KEY = "new-key-" + "n" * 40
RETIRED_KEY = "retired-key-" + "r" * 40
MAX_AGE = 336 * 3600
URL_SAFE = re.compile(r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$")


@pytest.fixture
def signer(clock: MovableClock) -> LinkSigner:
    return LinkSigner([NEW_KEY], MAX_AGE, clock=clock)


def _other_char(char: str) -> str:
    return "A" if char != "A" else "B"


def _change_char(token: str, index: int) -> str:
    changed = token[:index] + _other_char(token[index]) + token[index + 1 :]
    assert changed != token and len(changed) == len(token)
    return changed


def _parts(token: str) -> tuple[str, str, str]:
    payload, timestamp, signature = token.split(".")
    return payload, timestamp, signature


def _serializer(keys: list[str], salt: str, clock: MovableClock) -> URLSafeTimedSerializer:
    """The token format mailflow uses, built independently, to forge tokens with a known key."""

    class Clocked(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock().timestamp())

    return URLSafeTimedSerializer(keys, salt=salt, signer=Clocked)


class TestValidTokens:
    @pytest.mark.parametrize("action", ["accept", "refuse", "view"])
    def test_sale_token_round_trips_sale_and_action(self, signer: LinkSigner, action: str) -> None:
        token = signer.sale_token(42, action)
        assert signer.verify_sale_token(token) == SaleLink(sale_id=42, action=action)

    def test_token_is_url_safe_three_parts(self, signer: LinkSigner) -> None:
        token = signer.sale_token(2**31 - 1, "refuse")
        assert URL_SAFE.match(token), token

    def test_tokens_differ_per_sale_and_per_action(self, signer: LinkSigner) -> None:
        tokens = {
            signer.sale_token(1, "accept"),
            signer.sale_token(1, "refuse"),
            signer.sale_token(2, "accept"),
            signer.sale_token(2, "refuse"),
        }
        assert len(tokens) == 4

    def test_unknown_action_cannot_be_signed(self, signer: LinkSigner) -> None:
        for action in ("ship", "cancel", "REFUSE", ""):
            with pytest.raises(ValueError):
                signer.sale_token(1, action)

    def test_no_key_at_all_is_refused(self, clock: MovableClock) -> None:
        with pytest.raises(ValueError):
            LinkSigner([], MAX_AGE, clock=clock)


class TestTampering:
    def test_one_char_of_payload_changed_is_invalid(self, signer: LinkSigner) -> None:
        token = signer.sale_token(7, "refuse")
        payload, _, _ = _parts(token)
        for index in (0, len(payload) // 2, len(payload) - 1):
            with pytest.raises(InvalidLink):
                signer.verify_sale_token(_change_char(token, index))

    def test_one_char_of_signature_changed_is_invalid(self, signer: LinkSigner) -> None:
        token = signer.sale_token(7, "refuse")
        start = token.rindex(".") + 1
        # Not the last character: its low bits are base64 padding and may not count.
        for index in (start, start + 5, len(token) - 2):
            with pytest.raises(InvalidLink):
                signer.verify_sale_token(_change_char(token, index))

    def test_one_char_of_timestamp_changed_is_invalid(self, signer: LinkSigner) -> None:
        token = signer.sale_token(7, "refuse")
        payload, _, _ = _parts(token)
        with pytest.raises(InvalidLink):
            signer.verify_sale_token(_change_char(token, len(payload) + 2))

    def test_truncated_tokens_are_invalid(self, signer: LinkSigner) -> None:
        token = signer.sale_token(7, "refuse")
        for cut in (
            token[:-1],
            token[:-5],
            token.rsplit(".", 1)[0],
            token[: len(token) // 2],
            token.split(".")[0],
        ):
            with pytest.raises(InvalidLink):
                signer.verify_sale_token(cut)

    @pytest.mark.parametrize(
        "garbage",
        ["", "garbage", "a.b.c", "...", "é", "%00", "x" * 5000, "eyJzIjoxfQ.AAAA.AAAA"],
    )
    def test_garbage_is_invalid(self, signer: LinkSigner, garbage: str) -> None:
        with pytest.raises(InvalidLink):
            signer.verify_sale_token(garbage)

    def test_payload_swapped_between_two_valid_tokens_is_invalid(self, signer: LinkSigner) -> None:
        mine = signer.sale_token(1, "refuse")
        theirs = signer.sale_token(2, "refuse")
        _, ts, sig = _parts(mine)
        payload, _, _ = _parts(theirs)
        with pytest.raises(InvalidLink):
            signer.verify_sale_token(f"{payload}.{ts}.{sig}")

    def test_action_swapped_between_two_valid_tokens_is_invalid(self, signer: LinkSigner) -> None:
        accept = signer.sale_token(1, "accept")
        refuse = signer.sale_token(1, "refuse")
        _, ts, sig = _parts(accept)
        payload, _, _ = _parts(refuse)
        with pytest.raises(InvalidLink):
            signer.verify_sale_token(f"{payload}.{ts}.{sig}")

    def test_expired_and_tampered_is_invalid_not_expired(
        self, signer: LinkSigner, clock: MovableClock
    ) -> None:
        token = signer.sale_token(7, "refuse")
        clock.advance(seconds=MAX_AGE + 60)
        start = token.rindex(".") + 1
        with pytest.raises(InvalidLink):
            signer.verify_sale_token(_change_char(token, start + 3))


class TestPayloadShape:
    @pytest.mark.parametrize(
        "payload",
        [
            {"s": "7", "a": "refuse"},
            {"s": 7, "a": "ship"},
            {"s": 7},
            {"a": "refuse"},
            [7, "refuse"],
            "7:refuse",
            None,
        ],
    )
    def test_correctly_signed_but_malformed_payload_is_invalid(
        self, signer: LinkSigner, clock: MovableClock, payload: Any
    ) -> None:
        forged = _serializer([NEW_KEY], SALE_ACTION, clock).dumps(payload)
        with pytest.raises(InvalidLink):
            signer.verify_sale_token(forged)

    def test_forging_helper_matches_the_real_format(
        self, signer: LinkSigner, clock: MovableClock
    ) -> None:
        # Proves the forged tokens above fail for their payload, not for their format.
        forged = _serializer([NEW_KEY], SALE_ACTION, clock).dumps({"s": 7, "a": "refuse"})
        assert signer.verify_sale_token(forged) == SaleLink(7, "refuse")


class TestExpiry:
    def test_just_before_the_limit_is_valid(self, signer: LinkSigner, clock: MovableClock) -> None:
        token = signer.sale_token(7, "accept")
        clock.advance(seconds=MAX_AGE - 1)
        assert signer.verify_sale_token(token) == SaleLink(7, "accept")

    def test_exactly_at_the_limit_is_valid(self, signer: LinkSigner, clock: MovableClock) -> None:
        token = signer.sale_token(7, "accept")
        clock.advance(seconds=MAX_AGE)
        assert signer.verify_sale_token(token) == SaleLink(7, "accept")

    def test_past_the_limit_is_expired_with_its_payload(
        self, signer: LinkSigner, clock: MovableClock
    ) -> None:
        token = signer.sale_token(7, "refuse")
        clock.advance(seconds=MAX_AGE + 1)
        with pytest.raises(ExpiredLink) as caught:
            signer.verify_sale_token(token)
        assert caught.value.payload == {"s": 7, "a": "refuse"}

    def test_expired_is_not_reported_as_invalid(
        self, signer: LinkSigner, clock: MovableClock
    ) -> None:
        token = signer.sale_token(7, "refuse")
        clock.advance(hours=1000)
        with pytest.raises(ExpiredLink):
            signer.verify_sale_token(token)
        assert not issubclass(ExpiredLink, InvalidLink)

    def test_max_age_comes_from_the_signer(self, clock: MovableClock) -> None:
        short = LinkSigner([NEW_KEY], 60, clock=clock)
        token = short.sale_token(7, "refuse")
        clock.advance(seconds=60)
        assert short.verify_sale_token(token).sale_id == 7
        clock.advance(seconds=1)
        with pytest.raises(ExpiredLink):
            short.verify_sale_token(token)

    def test_login_token_uses_its_own_max_age(
        self, signer: LinkSigner, clock: MovableClock
    ) -> None:
        token = signer.login_token(5, "nonce-1")
        clock.advance(seconds=900)
        assert signer.verify_login_token(token, 900) == (5, "nonce-1")
        clock.advance(seconds=1)
        with pytest.raises(ExpiredLink):
            signer.verify_login_token(token, 900)


class TestPurposes:
    def test_login_token_round_trips(self, signer: LinkSigner) -> None:
        token = signer.login_token(5, "abc")
        assert signer.verify_login_token(token, 3600) == (5, "abc")

    def test_login_token_is_not_a_sale_token(self, signer: LinkSigner) -> None:
        with pytest.raises(InvalidLink):
            signer.verify_sale_token(signer.login_token(5, "abc"))

    def test_sale_token_is_not_a_login_token(self, signer: LinkSigner) -> None:
        with pytest.raises(InvalidLink):
            signer.verify_login_token(signer.sale_token(5, "refuse"), 3600)

    def test_each_purpose_is_signed_with_its_own_salt(
        self, signer: LinkSigner, clock: MovableClock
    ) -> None:
        sale_format = _serializer([NEW_KEY], SALE_ACTION, clock)
        login_format = _serializer([NEW_KEY], SELLER_LOGIN, clock)
        sale_token = signer.sale_token(7, "refuse")
        login_token = signer.login_token(7, "n")
        assert sale_format.loads(sale_token) == {"s": 7, "a": "refuse"}
        assert login_format.loads(login_token) == {"seller": 7, "n": "n"}
        with pytest.raises(BadSignature):
            login_format.loads(sale_token)
        with pytest.raises(BadSignature):
            sale_format.loads(login_token)

    def test_login_salt_rejects_a_sale_shaped_payload(
        self, signer: LinkSigner, clock: MovableClock
    ) -> None:
        # Same key, sale-shaped payload, login salt: only the salt tells them apart.
        forged = _serializer([NEW_KEY], SELLER_LOGIN, clock).dumps({"s": 7, "a": "refuse"})
        with pytest.raises(InvalidLink):
            signer.verify_sale_token(forged)

    def test_unsalted_token_with_the_right_key_is_invalid(
        self, signer: LinkSigner, clock: MovableClock
    ) -> None:
        forged = _serializer([NEW_KEY], "itsdangerous", clock).dumps({"s": 7, "a": "refuse"})
        with pytest.raises(InvalidLink):
            signer.verify_sale_token(forged)


class TestKeyRotation:
    def test_token_from_a_retired_key_is_invalid(self, clock: MovableClock) -> None:
        token = LinkSigner([RETIRED_KEY], MAX_AGE, clock=clock).sale_token(7, "refuse")
        current = LinkSigner([OLD_KEY, NEW_KEY], MAX_AGE, clock=clock)
        with pytest.raises(InvalidLink):
            current.verify_sale_token(token)

    def test_token_from_the_previous_key_still_listed_is_valid(self, clock: MovableClock) -> None:
        token = LinkSigner([OLD_KEY], MAX_AGE, clock=clock).sale_token(7, "refuse")
        rotated = LinkSigner([OLD_KEY, NEW_KEY], MAX_AGE, clock=clock)
        assert rotated.verify_sale_token(token) == SaleLink(7, "refuse")

    def test_new_tokens_are_signed_with_the_last_key(self, clock: MovableClock) -> None:
        rotated = LinkSigner([OLD_KEY, NEW_KEY], MAX_AGE, clock=clock)
        token = rotated.sale_token(7, "accept")
        only_new = LinkSigner([NEW_KEY], MAX_AGE, clock=clock)
        only_old = LinkSigner([OLD_KEY], MAX_AGE, clock=clock)
        assert only_new.verify_sale_token(token) == SaleLink(7, "accept")
        with pytest.raises(InvalidLink):
            only_old.verify_sale_token(token)

    def test_login_tokens_rotate_the_same_way(self, clock: MovableClock) -> None:
        rotated = LinkSigner([OLD_KEY, NEW_KEY], MAX_AGE, clock=clock)
        old_token = LinkSigner([OLD_KEY], MAX_AGE, clock=clock).login_token(3, "n")
        assert rotated.verify_login_token(old_token, 3600) == (3, "n")
        new_token = rotated.login_token(3, "n")
        assert LinkSigner([NEW_KEY], MAX_AGE, clock=clock).verify_login_token(new_token, 3600)
        with pytest.raises(InvalidLink):
            LinkSigner([OLD_KEY], MAX_AGE, clock=clock).verify_login_token(new_token, 3600)

    def test_expired_token_from_the_previous_key_is_expired(self, clock: MovableClock) -> None:
        token = LinkSigner([OLD_KEY], MAX_AGE, clock=clock).sale_token(7, "refuse")
        clock.advance(seconds=MAX_AGE + 1)
        with pytest.raises(ExpiredLink):
            LinkSigner([OLD_KEY, NEW_KEY], MAX_AGE, clock=clock).verify_sale_token(token)
