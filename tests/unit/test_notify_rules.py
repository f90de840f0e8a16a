"""The rules behind the policy and login emails, through the real services with fakes: one
tier email per entry into a tier, from seller support, and a login link email per request."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from mailflow.domain.policy import Counts
from mailflow.services import accounts, policy
from tests import fakes
from tests.fakes import NOW, SELLER_SUPPORT

TX = fakes.FakeTransaction()
QUIET = Counts(total=30)
WARNING = Counts(total=25, cancelled=1, withdrawn=1)  # 1 of 24: 4.2 %
OVER = Counts(total=33, cancelled=2, refused=1, withdrawn=1)  # 2 of 32: 6.2 %


def with_seller(
    counts: Counts,
    tier: str = "ok",
    since: datetime | None = None,
    until: datetime | None = None,
) -> fakes.Fakes:
    f = fakes.make()
    f.standings.sellers[7] = fakes.seller(tier=tier, since=since, until=until)
    f.standings.window[7] = counts
    return f


class TestOneTierEmailPerEntry:
    def test_entering_the_warning_band_sends_one_warning(self) -> None:
        f = with_seller(WARNING)
        policy.evaluate(f.ctx, TX, 7)
        policy.evaluate(f.ctx, TX, 7)  # still in the band: no second email
        [sent] = f.outbox.sent
        assert sent.key == "seller_rate_warning"
        assert sent.sender == SELLER_SUPPORT
        assert sent.context["tier"] == "warning"
        assert sent.context["rate"]["value"] == 1 / 24
        assert f.standings.sellers[7].tier == "warning"

    def test_warning_then_over_sends_the_alert_once(self) -> None:
        f = with_seller(WARNING)
        policy.evaluate(f.ctx, TX, 7)
        f.standings.window[7] = OVER
        f.at(NOW + timedelta(hours=1))
        policy.evaluate(f.ctx, TX, 7)
        policy.evaluate(f.ctx, TX, 7)
        assert f.outbox.keys == ["seller_rate_warning", "seller_rate_alert"]
        alert = f.outbox.sent[1].context
        assert alert["grace_ends"] == NOW + timedelta(hours=1) + timedelta(days=7)

    def test_falling_back_to_ok_and_entering_again_sends_again(self) -> None:
        f = with_seller(WARNING)
        policy.evaluate(f.ctx, TX, 7)
        f.standings.window[7] = QUIET
        policy.evaluate(f.ctx, TX, 7)  # back to ok: a change, announced to nobody
        assert f.standings.sellers[7].tier == "ok"
        f.standings.window[7] = WARNING
        policy.evaluate(f.ctx, TX, 7)
        assert f.outbox.keys == ["seller_rate_warning", "seller_rate_warning"]

    def test_over_past_the_grace_suspends_the_seller(self) -> None:
        f = with_seller(OVER, tier="over", since=NOW - timedelta(days=8))
        policy.evaluate(f.ctx, TX, 7)
        [sent] = f.outbox.sent
        assert sent.key == "seller_suspended"
        assert sent.context["suspended_until"] == NOW + timedelta(days=14)

    def test_a_suspension_ending_while_over_sends_reinstated_then_alert(self) -> None:
        f = with_seller(
            OVER,
            tier="suspended",
            since=NOW - timedelta(days=14),
            until=NOW - timedelta(minutes=1),
        )
        policy.evaluate(f.ctx, TX, 7)
        assert f.outbox.keys == ["seller_reinstated", "seller_rate_alert"]
        first, second = (q.context for q in f.outbox.sent)
        assert first == second and first["tier"] == "over"

    def test_a_lost_compare_and_set_sends_nothing(self) -> None:
        f = with_seller(WARNING)
        stale = f.standings.sellers[7]
        f.standings.sellers[7] = replace(stale, tier_version=1)  # another process won
        assert policy.evaluate(f.ctx, TX, 7, stale) is None
        assert f.outbox.sent == []

    def test_below_min_sales_nothing_moves(self) -> None:
        f = with_seller(Counts(total=10, cancelled=5))
        assert policy.evaluate(f.ctx, TX, 7) is None
        assert f.outbox.sent == []


class TestLoginLink:
    def test_a_known_address_gets_one_link_that_logs_in_once(self) -> None:
        f = fakes.make()
        f.logins.sellers.append(fakes.seller(email="Ventes@Librairie-Dupont.example"))
        accounts.request_login_link(f.ctx, " ventes@LIBRAIRIE-dupont.example ")
        [sent] = f.outbox.sent
        assert sent.key == "seller_login_link"
        assert sent.to.email == "Ventes@Librairie-Dupont.example"
        assert sent.context["valid_minutes"] == accounts.LOGIN_LINK_MINUTES
        url = sent.context["login_url"]
        prefix = f"{fakes.BASE_URL}/seller/login/"
        assert url.startswith(prefix)
        token = url.removeprefix(prefix)
        assert accounts.use_login_link(f.ctx, token) == 7
        with pytest.raises(accounts.LoginFailed, match="used"):
            accounts.use_login_link(f.ctx, token)

    def test_an_unknown_or_invalid_address_sends_nothing(self) -> None:
        f = fakes.make()
        f.logins.sellers.append(fakes.seller())
        accounts.request_login_link(f.ctx, "someone@else.example")
        accounts.request_login_link(f.ctx, "not an address")
        assert f.outbox.sent == []
        assert f.logins.links == {}

    def test_two_sellers_with_one_address_get_a_link_each(self) -> None:
        f = fakes.make()
        f.logins.sellers += [fakes.seller(7), fakes.seller(8)]
        accounts.request_login_link(f.ctx, "ventes@librairie-dupont.example")
        assert f.outbox.keys == ["seller_login_link", "seller_login_link"]
        assert sorted(link.seller_id for link in f.logins.links.values()) == [7, 8]
