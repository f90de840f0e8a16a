"""The cancellation-rate policy on the real databases (docs/policy.md, docs/api.md#sellers):
counts in SQL, tier emails through the API and the sweeper, the stats API and CLI, and
concurrent evaluations."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from mailflow.bootstrap import System
from mailflow.cli import main
from mailflow.domain.policy import Counts
from mailflow.domain.sales import Action, Actor, Channel, Reason
from mailflow.schemas import OrderIn, SellerIn
from mailflow.services import orders, policy, sales, sellers, sweeps
from mailflow.store import standings
from mailflow.store.models import OutboxMessage
from tests import factories
from tests.conftest import API_TOKEN, SECRET
from tests.support import MovableClock, RelayHandler, deliver, text_of

RATE_EMAILS = ("seller_rate_warning", "seller_rate_alert", "seller_suspended", "seller_reinstated")
SELLER_SUPPORT = "vendeurs@marketplace.example"  # the default [smtp] seller_support_address
_n = itertools.count(1)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


@contextmanager
def client_for(system: System) -> Iterator[TestClient]:
    """An API client on ``system`` (for policies other than the ``api`` fixture's)."""
    from mailflow.web.app import create_app

    with TestClient(create_app(system), base_url="http://mailflow.test") as client:
        client.headers["Authorization"] = f"Bearer {API_TOKEN}"
        yield client


def sent(system: System, template: str, to: str | None = None) -> int:
    """How many outbox rows ``template`` has (to ``to``): what was queued, once or more."""
    with system.db.read() as session:
        query = select(func.count()).select_from(OutboxMessage)
        query = query.where(OutboxMessage.template == template)
        if to is not None:
            query = query.where(OutboxMessage.recipient == to)
        return int(session.execute(query).scalar_one())


def rate_emails(system: System, to: str) -> dict[str, int]:
    return {key: sent(system, key, to) for key in RATE_EMAILS}


def no_rate_emails() -> dict[str, int]:
    return dict.fromkeys(RATE_EMAILS, 0)


def new_sales(api: TestClient, seller_id: int, n: int) -> list[int]:
    """One order of ``n`` articles from the seller (``n`` sales); the sale ids."""
    body = factories.order_body(seller_id)
    item = body["items"][0]
    body["items"] = [{**item, "sku": f"{item['sku']}-{i}"} for i in range(n)]
    response = api.post("/api/v1/orders", json=body)
    assert response.status_code == 201, response.text
    return [s["id"] for s in response.json()["sales"]]


def cancel(api: TestClient, sale_id: int) -> dict[str, Any]:
    assert api.post(f"/api/v1/sales/{sale_id}/accept").status_code == 200
    response = api.post(
        f"/api/v1/sales/{sale_id}/cancel", json={"reason": "cannot_ship", "message": "Désolé."}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def normalized(text: str) -> str:
    """Text with the no-break spaces of formatted numbers turned into plain spaces."""
    return text.replace("\u202f", " ").replace("\xa0", " ")


def delivered(relay: tuple[RelayHandler, int], template: str, to: str) -> list[Any]:
    return [
        m
        for m in relay[0].messages()
        if m["X-Mailflow-Template"] == template and m["To"].addresses[0].addr_spec == to
    ]


# Fast paths through the services (no HTTP), for the tests that need many sales.


def svc_seller(system: System) -> dict[str, Any]:
    n = next(_n)
    return sellers.create_seller(
        system.services, SellerIn(name=f"Vendeur {n}", email=f"vendeur{n}@shop.example")
    )


def svc_order(system: System, seller_id: int, items: int = 1) -> list[int]:
    n = next(_n)
    data = OrderIn.model_validate(
        {
            "external_id": f"POL-{n}",
            "buyer": {"email": f"acheteur{n}@mail.example", "name": f"Acheteur {n}"},
            "items": [
                {"seller_id": seller_id, "sku": f"P{n}-{i}", "title": "Livre", "unit_price": "9.90"}
                for i in range(items)
            ],
        }
    )
    result = orders.place_order(system.services, data, None)
    assert result.created
    return [s["id"] for s in result.body["sales"]]


def svc_act(system: System, sale_id: int, action: Action) -> str:
    options: dict[str, Any] = {}
    if action in (Action.REFUSE, Action.CANCEL):
        options["reason"] = Reason.OTHER
    actor = {Action.EXPIRE: Actor.SYSTEM, Action.WITHDRAW: Actor.SUPPORT}.get(action, Actor.SELLER)
    outcome = sales.transition(
        system.services, sale_id, action, actor=actor, channel=Channel.API, **options
    )
    assert outcome.changed
    return str(outcome.sale["status"])


# ---------------------------------------------------------------------------------------------
# The counts in SQL against a reference
# ---------------------------------------------------------------------------------------------

WINDOW_DAYS = 2.5
WINDOW = timedelta(days=WINDOW_DAYS)
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

PATHS: dict[str, tuple[Action, ...]] = {
    "pending": (),
    "accepted": (Action.ACCEPT,),
    "shipped": (Action.ACCEPT, Action.SHIP),
    "refused": (Action.REFUSE,),
    "expired": (Action.EXPIRE,),
    "cancelled": (Action.ACCEPT, Action.CANCEL),
    "withdrawn": (Action.WITHDRAW,),
    "withdrawn after acceptance": (Action.ACCEPT, Action.WITHDRAW),
}


@dataclass
class RefSale:
    id: int
    seller_id: int
    created: datetime
    status: str


def ref_counts(sales_: list[RefSale], seller_id: int) -> Counts:
    window = [s for s in sales_ if s.seller_id == seller_id and s.created >= NOW - WINDOW]
    return Counts(
        total=len(window),
        cancelled=sum(s.status == "cancelled" for s in window),
        refused=sum(s.status in ("refused", "expired") for s in window),
        withdrawn=sum(s.status == "withdrawn" for s in window),
    )


def ref_rate(counts: Counts, count_refusals: bool) -> Fraction:
    against = counts.cancelled + (counts.refused if count_refusals else 0)
    counted = counts.total - counts.withdrawn
    return Fraction(against, counted) if counted else Fraction(0)


def ref_against_ids(sales_: list[RefSale], seller_id: int, count_refusals: bool) -> set[int]:
    against = {"cancelled", "refused", "expired"} if count_refusals else {"cancelled"}
    return {
        s.id
        for s in sales_
        if s.seller_id == seller_id and s.created >= NOW - WINDOW and s.status in against
    }


ages = st.one_of(
    st.sampled_from(
        [
            WINDOW,  # exactly at the window's edge: counted
            WINDOW - timedelta(microseconds=1),
            WINDOW + timedelta(microseconds=1),  # just outside
            WINDOW + timedelta(seconds=1),
            timedelta(0),
        ]
    ),
    st.integers(0, int((WINDOW + timedelta(days=1)).total_seconds())).map(
        lambda s: timedelta(seconds=s)
    ),
)
sale_spec = st.tuples(ages, st.sampled_from(sorted(PATHS)))


@dataclass
class CountSystems:
    plain: System
    with_refusals: System
    reference: list[RefSale]


@pytest.fixture
def count_systems(
    db_url: str, make_system: Callable[..., System], clock: MovableClock
) -> CountSystems:
    # Sales are made in the past and acted on now: a deadline past the window lets them be.
    deadline = 10 * 365 * 24
    common = {"window_days": WINDOW_DAYS, "min_sales": 1000, "acceptance_deadline_hours": deadline}
    return CountSystems(
        plain=make_system(db_url, policy=common),
        with_refusals=make_system(db_url, policy={**common, "count_refusals": True}),
        reference=[],
    )


class TestCounts:
    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        specs=st.lists(sale_spec, min_size=1, max_size=8),
        other_specs=st.lists(sale_spec, max_size=3),
    )
    def test_sql_counts_equal_the_reference(
        self,
        count_systems: CountSystems,
        clock: MovableClock,
        specs: list[tuple[timedelta, str]],
        other_specs: list[tuple[timedelta, str]],
    ) -> None:
        systems, reference = count_systems, count_systems.reference
        system = systems.plain
        ours, other = svc_seller(system)["id"], svc_seller(system)["id"]
        for seller_id, wanted in ((ours, specs), (other, other_specs)):
            for age, path in wanted:
                clock.now = NOW - age
                (sale_id,) = svc_order(system, seller_id)
                clock.now = NOW
                ref = RefSale(sale_id, seller_id, NOW - age, "pending")
                reference.append(ref)
                for action in PATHS[path]:
                    ref.status = svc_act(system, sale_id, action)
        clock.now = NOW

        since = policy.window_start(system.services.policy, NOW)
        assert since == NOW - WINDOW
        everyone = {s.seller_id for s in reference}
        expected_all = {
            sid: ref_counts(reference, sid) for sid in everyone if ref_counts(reference, sid).total
        }
        with system.db.read() as session:
            assert standings.counts(session, ours, since) == ref_counts(reference, ours)
            assert standings.counts_all(session, since) == expected_all

        for current, count_refusals in ((systems.plain, False), (systems.with_refusals, True)):
            counts = ref_counts(reference, ours)
            stats = policy.stats(current.services, ours)
            assert (stats["counted"], stats["cancelled"], stats["refused"], stats["withdrawn"]) == (
                counts.total - counts.withdrawn,
                counts.cancelled,
                counts.refused,
                counts.withdrawn,
            )
            assert stats["rate"] == round(float(ref_rate(counts, count_refusals)), 6)
            assert {s["id"] for s in stats["sales"]} == ref_against_ids(
                reference, ours, count_refusals
            )
            rows = {r["id"]: r for r in policy.stats_all(current.services)}
            assert rows[ours]["rate"] == float(ref_rate(counts, count_refusals))
            assert rows[ours]["counted"] == counts.total - counts.withdrawn

    def test_window_edge_withdrawals_and_refusals(
        self, count_systems: CountSystems, clock: MovableClock
    ) -> None:
        system = count_systems.plain
        seller_id = svc_seller(system)["id"]

        def sale_at(age: timedelta, *actions: Action) -> int:
            clock.now = NOW - age
            (sale_id,) = svc_order(system, seller_id)
            clock.now = NOW
            for action in actions:
                svc_act(system, sale_id, action)
            return sale_id

        edge = sale_at(WINDOW, Action.ACCEPT, Action.CANCEL)
        sale_at(WINDOW + timedelta(microseconds=1), Action.ACCEPT, Action.CANCEL)  # outside
        sale_at(WINDOW + timedelta(seconds=1), Action.REFUSE)  # outside
        refused = sale_at(timedelta(hours=1), Action.REFUSE)
        expired = sale_at(timedelta(hours=50), Action.EXPIRE)
        sale_at(timedelta(hours=2), Action.WITHDRAW)
        sale_at(timedelta(hours=3), Action.ACCEPT, Action.WITHDRAW)
        sale_at(timedelta(hours=4), Action.ACCEPT)
        sale_at(timedelta(0))

        plain = policy.stats(system.services, seller_id)
        assert (plain["counted"], plain["cancelled"], plain["refused"], plain["withdrawn"]) == (
            5,
            1,
            2,
            2,
        )
        assert plain["rate"] == round(1 / 5, 6)
        assert [s["id"] for s in plain["sales"]] == [edge]
        strict = policy.stats(count_systems.with_refusals.services, seller_id)
        assert strict["rate"] == round(3 / 5, 6)
        assert {s["id"] for s in strict["sales"]} == {edge, refused, expired}
        # One microsecond later the edge sale leaves the window.
        clock.now = NOW + timedelta(microseconds=1)
        later = policy.stats(system.services, seller_id)
        assert (later["counted"], later["cancelled"], later["sales"]) == (4, 0, [])


# ---------------------------------------------------------------------------------------------
# Tiers and their emails, through the API and the sweeper
# ---------------------------------------------------------------------------------------------


class TestTierEmails:
    def test_one_cancellation_in_20_sales_is_over_and_alerts_once(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller = factories.seller(api)
        ids = new_sales(api, seller["id"], 20)
        assert rate_emails(system, seller["email"]) == no_rate_emails()

        cancel(api, ids[0])
        assert rate_emails(system, seller["email"]) == {**no_rate_emails(), "seller_rate_alert": 1}
        stats = api.get(f"/api/v1/sellers/{seller['id']}/stats").json()
        assert (stats["tier"], stats["rate"], stats["counted"]) == ("over", 0.05, 20)

        deliver(system)
        (alert,) = delivered(relay, "seller_rate_alert", seller["email"])
        assert alert["From"].addresses[0].addr_spec == SELLER_SUPPORT
        envelope = [
            r.mail_from
            for r in relay[0].received
            if r.message["X-Mailflow-Template"] == "seller_rate_alert"
        ]
        assert envelope == [SELLER_SUPPORT]
        assert "5 %" in normalized(text_of(alert))  # the threshold and the rate, both 5 %

        cancel(api, ids[1])  # 10 %: still over, nothing more
        assert rate_emails(system, seller["email"]) == {**no_rate_emails(), "seller_rate_alert": 1}
        assert api.get(f"/api/v1/sellers/{seller['id']}/stats").json()["tier"] == "over"

    def test_under_min_sales_nothing_is_sent_but_the_rate_is_reported(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller = factories.seller(api)
        ids = new_sales(api, seller["id"], 19)
        for sale_id in ids[:3]:
            cancel(api, sale_id)
        assert rate_emails(system, seller["email"]) == no_rate_emails()
        stats = api.get(f"/api/v1/sellers/{seller['id']}/stats").json()
        assert stats["tier"] == "ok"
        assert stats["rate"] == round(3 / 19, 6)
        assert (stats["counted"], stats["cancelled"]) == (19, 3)
        # The 20th sale reaches min_sales: 3/20 = 15 % is over at once.
        new_sales(api, seller["id"], 1)
        assert rate_emails(system, seller["email"]) == {**no_rate_emails(), "seller_rate_alert": 1}
        deliver(system)
        (alert,) = delivered(relay, "seller_rate_alert", seller["email"])
        text = normalized(text_of(alert))
        assert "15 %" in text  # the rate
        assert "sous 5 %" in text  # the threshold

    def test_grace_then_suspension_then_reinstatement(
        self,
        api: TestClient,
        system: System,
        clock: MovableClock,
        relay: tuple[RelayHandler, int],
    ) -> None:
        seller = factories.seller(api)
        email = seller["email"]
        ids = new_sales(api, seller["id"], 20)
        t0 = clock.now
        cancel(api, ids[0])
        assert sent(system, "seller_rate_alert", email) == 1

        clock.now = t0 + timedelta(days=7) - timedelta(seconds=1)
        sweeps.sweep(system.services)
        assert sent(system, "seller_suspended", email) == 0
        assert api.get(f"/api/v1/sellers/{seller['id']}/stats").json()["tier"] == "over"

        clock.now = t0 + timedelta(days=7)
        assert sweeps.sweep(system.services).tiers_changed == 1
        assert sent(system, "seller_suspended", email) == 1
        stats = api.get(f"/api/v1/sellers/{seller['id']}/stats").json()
        until = t0 + timedelta(days=21)
        assert stats["tier"] == "suspended"
        assert datetime.fromisoformat(stats["suspended_until"]) == until
        assert sweeps.sweep(system.services).tiers_changed == 0
        assert sent(system, "seller_suspended", email) == 1

        blocked = api.post("/api/v1/orders", json=factories.order_body(seller["id"]))
        assert blocked.status_code == 409
        assert blocked.json()["error"] == "seller_suspended"
        deliver(system)
        (suspended,) = delivered(relay, "seller_suspended", email)
        assert suspended["From"].addresses[0].addr_spec == SELLER_SUPPORT
        assert "5 %" in normalized(text_of(suspended))

        clock.now = until - timedelta(seconds=1)
        sweeps.sweep(system.services)
        assert sent(system, "seller_reinstated", email) == 0
        assert (
            api.post("/api/v1/orders", json=factories.order_body(seller["id"])).status_code == 409
        )

        clock.now = until
        sweeps.sweep(system.services)
        assert sent(system, "seller_reinstated", email) == 1
        assert sent(system, "seller_suspended", email) == 1
        assert (
            api.post("/api/v1/orders", json=factories.order_body(seller["id"])).status_code == 201
        )
        sweeps.sweep(system.services)
        assert sent(system, "seller_reinstated", email) == 1
        # The sales that made the rate are still in the 30-day window: evaluated afresh, the
        # seller is over again, which is a new entry into `over` and a new alert.
        assert sent(system, "seller_rate_alert", email) == 2

    def test_an_order_right_when_the_suspension_ends_is_accepted_and_reinstates(
        self, api: TestClient, system: System, clock: MovableClock
    ) -> None:
        seller = factories.seller(api)
        ids = new_sales(api, seller["id"], 20)
        t0 = clock.now
        cancel(api, ids[0])
        clock.now = t0 + timedelta(days=7)
        sweeps.sweep(system.services)
        clock.now = t0 + timedelta(days=21)  # no sweep in between: the order comes first
        assert (
            api.post("/api/v1/orders", json=factories.order_body(seller["id"])).status_code == 201
        )
        assert sent(system, "seller_reinstated", seller["email"]) == 1
        sweeps.sweep(system.services)
        assert sent(system, "seller_reinstated", seller["email"]) == 1

    def test_back_under_the_threshold_before_grace_is_not_suspended(
        self, api: TestClient, system: System, clock: MovableClock
    ) -> None:
        seller = factories.seller(api)
        ids = new_sales(api, seller["id"], 20)
        t0 = clock.now
        cancel(api, ids[0])
        clock.now = t0 + timedelta(days=3)
        new_sales(api, seller["id"], 1)  # 1/21 = 4.8 %: under 5 %
        stats = api.get(f"/api/v1/sellers/{seller['id']}/stats").json()
        assert stats["tier"] == "warning"
        for days in (7, 8, 15):
            clock.now = t0 + timedelta(days=days)
            sweeps.sweep(system.services)
        assert sent(system, "seller_suspended", seller["email"]) == 0
        assert api.get(f"/api/v1/sellers/{seller['id']}/stats").json()["tier"] == "warning"
        assert (
            api.post("/api/v1/orders", json=factories.order_body(seller["id"])).status_code == 201
        )

    def test_the_window_sliding_moves_the_tier_through_the_sweeper(
        self, api: TestClient, system: System, clock: MovableClock
    ) -> None:
        seller = factories.seller(api)
        stats_url = f"/api/v1/sellers/{seller['id']}/stats"
        t0 = clock.now
        new_sales(api, seller["id"], 40)
        assert policy.evaluate_all(system.services) == 0  # the process's first sweep
        clock.now = t0 + timedelta(days=20)
        ids = new_sales(api, seller["id"], 20)
        cancel(api, ids[0])  # 1/60
        assert policy.evaluate_all(system.services) == 0
        clock.now = t0 + timedelta(days=30)  # the first 40 sales are exactly at the edge
        assert policy.evaluate_all(system.services) == 0
        assert api.get(stats_url).json()["tier"] == "ok"

        clock.now = t0 + timedelta(days=30, microseconds=1)  # ... and now out: 1/20
        assert policy.evaluate_all(system.services) == 1
        stats = api.get(stats_url).json()
        assert (stats["tier"], stats["counted"], stats["rate"]) == ("over", 20, 0.05)
        assert rate_emails(system, seller["email"]) == {**no_rate_emails(), "seller_rate_alert": 1}

        clock.now = t0 + timedelta(days=31)  # grace runs from the alert, not from the sales
        assert policy.evaluate_all(system.services) == 0
        clock.now = t0 + timedelta(days=50, microseconds=1)  # everything slid out
        assert policy.evaluate_all(system.services) == 1
        assert api.get(stats_url).json()["tier"] == "ok"
        assert rate_emails(system, seller["email"]) == {**no_rate_emails(), "seller_rate_alert": 1}

    def test_warning_email_once_per_entry_into_the_band(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller = factories.seller(api)
        email = seller["email"]
        ids = new_sales(api, seller["id"], 22)
        cancel(api, ids[0])  # 1/22 = 4.5 %
        assert rate_emails(system, email) == {**no_rate_emails(), "seller_rate_warning": 1}
        new_sales(api, seller["id"], 3)  # 1/25 = 4 % exactly: still in the band
        stats = api.get(f"/api/v1/sellers/{seller['id']}/stats").json()
        assert (stats["tier"], stats["rate"]) == ("warning", 0.04)
        assert sent(system, "seller_rate_warning", email) == 1
        ids += new_sales(api, seller["id"], 1)  # 1/26 = 3.8 %: out of the band
        assert api.get(f"/api/v1/sellers/{seller['id']}/stats").json()["tier"] == "ok"
        ids += new_sales(api, seller["id"], 18)  # 1/44
        cancel(api, ids[-1])  # 2/44 = 4.5 %: a new entry into the band
        assert rate_emails(system, email) == {**no_rate_emails(), "seller_rate_warning": 2}
        deliver(system)
        warnings = delivered(relay, "seller_rate_warning", email)
        assert len(warnings) == 2
        assert all(m["From"].addresses[0].addr_spec == SELLER_SUPPORT for m in warnings)

    def test_refusals_count_only_when_configured(
        self, db_url: str, make_system: Callable[..., System]
    ) -> None:
        strict = make_system(db_url, policy={"count_refusals": True})
        with client_for(strict) as api:
            seller = factories.seller(api)
            ids = new_sales(api, seller["id"], 20)
            refused = api.post(f"/api/v1/sales/{ids[0]}/refuse", json={"reason": "other"})
            assert refused.status_code == 200
            assert sent(strict, "seller_rate_alert", seller["email"]) == 1
            stats = api.get(f"/api/v1/sellers/{seller['id']}/stats").json()
            assert (stats["tier"], stats["rate"]) == ("over", 0.05)
            assert [s["id"] for s in stats["sales"]] == [ids[0]]

            other = factories.seller(api)
            other_ids = new_sales(api, other["id"], 40)
            for sale_id in other_ids[:10]:
                assert api.post(f"/api/v1/sales/{sale_id}/withdraw").status_code == 200
            assert rate_emails(strict, other["email"]) == no_rate_emails()
            assert api.get(f"/api/v1/sellers/{other['id']}/stats").json()["rate"] == 0

        lenient = make_system(db_url)
        with client_for(lenient) as api:
            seller = factories.seller(api)
            ids = new_sales(api, seller["id"], 20)
            for sale_id in ids[:5]:
                assert (
                    api.post(
                        f"/api/v1/sales/{sale_id}/refuse", json={"reason": "other"}
                    ).status_code
                    == 200
                )
            assert rate_emails(lenient, seller["email"]) == no_rate_emails()
            stats = api.get(f"/api/v1/sellers/{seller['id']}/stats").json()
            assert (stats["tier"], stats["rate"], stats["refused"], stats["sales"]) == (
                "ok",
                0,
                5,
                [],
            )


# ---------------------------------------------------------------------------------------------
# What sellers and admins see: the stats API, the cancellation confirmation, the CLI
# ---------------------------------------------------------------------------------------------


class TestStats:
    def test_stats_show_rate_tier_counts_and_the_sales_that_count(
        self, api: TestClient, clock: MovableClock
    ) -> None:
        seller = factories.seller(api)
        start = clock.now
        clock.now = start - timedelta(days=30, seconds=1)
        (old,) = new_sales(api, seller["id"], 1)  # outside the window by a second
        cancel(api, old)  # accepted before its deadline, then cancelled
        clock.now = start - timedelta(days=30)
        (edge,) = new_sales(api, seller["id"], 1)  # exactly at the edge: counted
        cancel(api, edge)
        clock.now = start
        ids = new_sales(api, seller["id"], 21)
        cancel(api, ids[0])
        assert (
            api.post(f"/api/v1/sales/{ids[1]}/refuse", json={"reason": "other"}).status_code == 200
        )
        assert api.post(f"/api/v1/sales/{ids[2]}/withdraw").status_code == 200
        assert api.post(f"/api/v1/sales/{ids[3]}/accept").status_code == 200
        assert api.post(f"/api/v1/sales/{ids[3]}/withdraw").status_code == 200

        response = api.get(f"/api/v1/sellers/{seller['id']}/stats")
        assert response.status_code == 200
        stats = response.json()
        # 22 sales in the window (edge + 21), 2 withdrawn → 20 counted; 2 cancelled in it.
        assert stats["counted"] == 20
        assert stats["cancelled"] == 2
        assert stats["withdrawn"] == 2
        assert stats["rate"] == 0.1
        assert stats["tier"] == "over"
        assert stats["window_days"] == 30
        assert stats["threshold"] == 0.05
        assert stats["suspended_until"] is None
        assert sorted(s["id"] for s in stats["sales"]) == sorted([edge, ids[0]])
        assert {s["status"] for s in stats["sales"]} == {"cancelled"}

        assert api.get("/api/v1/sellers/999999/stats").status_code == 404

    def test_seller_sale_cancelled_carries_the_new_rate(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller = factories.seller(api)
        ids = new_sales(api, seller["id"], 20)
        cancel(api, ids[0])
        deliver(system)
        (first,) = delivered(relay, "seller_sale_cancelled", seller["email"])
        assert "taux d'annulation actuel : 5 %" in normalized(text_of(first))
        cancel(api, ids[1])
        deliver(system)
        mails = delivered(relay, "seller_sale_cancelled", seller["email"])
        assert len(mails) == 2
        second = next(m for m in mails if m["Message-ID"] != first["Message-ID"])
        assert "taux d'annulation actuel : 10 %" in normalized(text_of(second))

    def test_cli_sellers_stats_prints_the_table(
        self,
        api: TestClient,
        db_url: str,
        clock: MovableClock,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # The command runs on the real clock: put the sales at the real now.
        clock.now = datetime.now(UTC)
        over = factories.seller(api, name="Librairie Trop Annulée")
        ids = new_sales(api, over["id"], 20)
        cancel(api, ids[0])
        cancel(api, ids[1])
        fine = factories.seller(api, name="Bouquiniste Fiable")
        new_sales(api, fine["id"], 20)
        config = tmp_path / "mailflow.toml"
        config.write_text(
            f'[database]\nurl = "{db_url}"\n\n[security]\nsecret_keys = ["{SECRET}"]\n',
            encoding="utf-8",
        )
        capsys.readouterr()

        assert main(["sellers", "stats", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        lines = out.splitlines()
        assert "5%" in lines[0]  # the threshold
        row_over = next(line for line in lines if "Librairie Trop Annulée" in line)
        row_fine = next(line for line in lines if "Bouquiniste Fiable" in line)
        assert row_over.split()[0] == str(over["id"])
        assert row_over.split()[-4:] == ["10%", "over", "20", "2"]
        assert row_fine.split()[-4:] == ["0%", "ok", "20", "0"]
        assert lines.index(row_over) < lines.index(row_fine)  # highest rate first

        assert main(["sellers", "stats", "--over", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert "Librairie Trop Annulée" in out
        assert "Bouquiniste Fiable" not in out


# ---------------------------------------------------------------------------------------------
# Concurrency: several sweepers at once send each tier email once
# ---------------------------------------------------------------------------------------------

THREADS = 8


def run_together(n: int, work: Callable[[int], int]) -> list[int]:
    """Run ``work(i)`` in ``n`` threads released at the same moment; their results."""
    barrier = threading.Barrier(n)
    results: list[int] = [0] * n
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    return results


@dataclass
class Population:
    strict: System
    over: list[dict[str, Any]]
    warning: list[dict[str, Any]]
    fine: list[dict[str, Any]]


@pytest.fixture
def population(db_url: str, make_system: Callable[..., System]) -> Population:
    """Sellers whose tier changes as soon as a default-policy system evaluates them.

    They are made under a lenient policy (nothing changes tier), then judged by the default
    one: 3 sellers at 5 % (over), 2 at 4.5 % (warning), 1 at 0 %.
    """
    lenient = make_system(db_url, policy={"threshold": 0.5, "warning_ratio": 0.9})
    groups: dict[str, list[dict[str, Any]]] = {"over": [], "warning": [], "fine": []}
    for group, count, size, cancels in (
        ("over", 3, 20, 1),
        ("warning", 2, 22, 1),
        ("fine", 1, 20, 0),
    ):
        for _ in range(count):
            seller = svc_seller(lenient)
            ids = svc_order(lenient, seller["id"], items=size)
            for sale_id in ids[:cancels]:
                svc_act(lenient, sale_id, Action.ACCEPT)
                svc_act(lenient, sale_id, Action.CANCEL)
            groups[group].append(seller)
    for key in RATE_EMAILS:
        assert sent(lenient, key) == 0
    return Population(make_system(db_url), groups["over"], groups["warning"], groups["fine"])


def per_seller(system: System, template: str, group: list[dict[str, Any]]) -> list[int]:
    return [sent(system, template, s["email"]) for s in group]


class TestConcurrentEvaluation:
    def test_concurrent_sweeps_send_each_tier_email_once(
        self, population: Population, clock: MovableClock
    ) -> None:
        system, over, warning = population.strict, population.over, population.warning

        changed = run_together(THREADS, lambda _: policy.evaluate_all(system.services))
        assert sum(changed) == len(over) + len(warning)
        assert per_seller(system, "seller_rate_alert", over) == [1] * len(over)
        assert per_seller(system, "seller_rate_warning", warning) == [1] * len(warning)
        assert sent(system, "seller_rate_alert") == len(over)
        assert sent(system, "seller_rate_warning") == len(warning)
        for seller in population.fine:
            assert rate_emails(system, seller["email"]) == no_rate_emails()

        clock.advance(days=7)
        changed = run_together(THREADS, lambda _: policy.evaluate_all(system.services))
        assert sum(changed) == len(over)
        assert per_seller(system, "seller_suspended", over) == [1] * len(over)
        assert sent(system, "seller_suspended") == len(over)

        clock.advance(days=14)
        changed = run_together(THREADS, lambda _: policy.evaluate_all(system.services))
        assert sum(changed) == len(over)
        assert per_seller(system, "seller_reinstated", over) == [1] * len(over)
        assert per_seller(system, "seller_rate_alert", over) == [2] * len(over)  # over again
        assert sent(system, "seller_reinstated") == len(over)
        assert sent(system, "seller_rate_warning") == len(warning)
        assert sent(system, "seller_suspended") == len(over)

        # Nothing is due any more: more concurrent sweeps send nothing.
        before = {key: sent(system, key) for key in RATE_EMAILS}
        assert sum(run_together(THREADS, lambda _: policy.evaluate_all(system.services))) == 0
        assert {key: sent(system, key) for key in RATE_EMAILS} == before
        for seller in population.fine:
            assert rate_emails(system, seller["email"]) == no_rate_emails()

    def test_concurrent_evaluate_and_sweeps_on_the_same_sellers(
        self, population: Population, clock: MovableClock
    ) -> None:
        system = population.strict
        ids = [s["id"] for s in population.over + population.warning + population.fine]

        def work(i: int) -> int:
            if i % 2:
                return policy.evaluate_all(system.services)
            changed = 0
            for seller_id in ids[i % len(ids) :] + ids[: i % len(ids)]:
                with system.db.transaction() as session:
                    changed += policy.evaluate(system.services, session, seller_id) is not None
            return changed

        assert sum(run_together(THREADS, work)) == len(population.over) + len(population.warning)
        assert per_seller(system, "seller_rate_alert", population.over) == [1] * 3
        assert per_seller(system, "seller_rate_warning", population.warning) == [1] * 2

        clock.advance(days=7)
        assert sum(run_together(THREADS, work)) == len(population.over)
        assert per_seller(system, "seller_suspended", population.over) == [1] * 3
        assert sent(system, "seller_suspended") == 3
