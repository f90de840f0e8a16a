"""The webhook rules of ``domain.webhooks`` and the URL checks of ``webhooks.guard``: pure,
no network (names are never resolved here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from mailflow.config import ConfigError, WebhookSettings, load
from mailflow.domain.webhooks import (
    forbidden_address,
    new_secret,
    next_attempt,
    signature,
    signature_header,
    subscribes,
)
from mailflow.webhooks.guard import UrlRefused, parse

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class TestSignatures:
    def test_the_standard_webhooks_library_verifies_what_is_signed(self) -> None:
        secret = new_secret()
        body = b'{"id":"evt_1","type":"sale.created"}'
        now = int(datetime.now(UTC).timestamp())
        headers = {
            "webhook-id": "evt_1",
            "webhook-timestamp": str(now),
            "webhook-signature": signature_header([new_secret(), secret], "evt_1", now, body),
        }
        assert Webhook(secret).verify(body, headers)["type"] == "sale.created"
        expected = Webhook(secret).sign("evt_1", datetime.fromtimestamp(now, UTC), body)
        assert signature(secret, "evt_1", now, body) == expected

    def test_secrets_are_random_and_prefixed(self) -> None:
        first, second = new_secret(), new_secret()
        assert first.startswith("whsec_") and first != second


class TestAddresses:
    @pytest.mark.parametrize(
        "address",
        [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "fe80::1",
            "fc00::1",
            "0.0.0.0",
            "100.64.0.1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ],
    )
    def test_refused(self, address: str) -> None:
        assert forbidden_address(address) is not None

    @pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
    def test_public_addresses_are_allowed(self, address: str) -> None:
        assert forbidden_address(address) is None

    def test_metadata_is_named(self) -> None:
        assert forbidden_address("169.254.169.254") == "a cloud metadata address"


class TestUrls:
    @pytest.mark.parametrize(
        "url",
        [
            "http://hooks.example/x",
            "hooks.example/x",
            "https://",
            "https://a:b@hooks.example/",
            "https://hooks.example/x#frag",
            "https://hooks.example:99999/",
            "https://hooks.example/a b",
            "javascript:alert(1)",
        ],
    )
    def test_refused(self, url: str) -> None:
        with pytest.raises(UrlRefused):
            parse(url, allow_http=False)

    def test_http_with_allow_http_and_the_parts(self) -> None:
        target = parse("http://[::1]:8080/in?x=1", allow_http=True)
        assert (target.host, target.port, target.path) == ("::1", 8080, "/in?x=1")
        assert target.host_header == "[::1]:8080"
        assert parse("https://hooks.example/in", allow_http=False).url_for("1.2.3.4") == (
            "https://1.2.3.4:443/in"
        )


class TestRetries:
    def test_backoff_doubles_until_give_up(self) -> None:
        give_up = timedelta(hours=72)
        assert next_attempt(T0, 1, T0, 30, give_up) == T0 + timedelta(seconds=30)
        assert next_attempt(T0, 3, T0, 30, give_up) == T0 + timedelta(seconds=120)
        late = T0 + timedelta(hours=71, minutes=59)
        assert next_attempt(T0, 20, late, 30, give_up) == T0 + give_up
        assert next_attempt(T0, 21, T0 + give_up, 30, give_up) is None
        assert next_attempt(T0, 10_000, T0, 30, give_up) == T0 + give_up

    def test_filters(self) -> None:
        assert subscribes(["*"], "sale.created")
        assert subscribes(["sale.created"], "sale.created")
        assert not subscribes(["sale.refused"], "sale.created")


class TestSettings:
    def test_a_lease_shorter_than_the_timeout_is_refused(self) -> None:
        env = {"MAILFLOW_WEBHOOKS__TIMEOUT_SECONDS": "30", "MAILFLOW_WEBHOOKS__LEASE_SECONDS": "10"}
        with pytest.raises(ConfigError, match="lease_seconds"):
            load(None, env, create_dev_secrets=False)

    def test_the_defaults(self) -> None:
        hooks = WebhookSettings()
        assert (hooks.allow_http, hooks.allow_private_networks) == (False, False)
        assert (hooks.retry_base_seconds, hooks.give_up_after_hours) == (30, 72)
        assert hooks.timeout_seconds == 10
