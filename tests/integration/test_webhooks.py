"""Webhooks to the marketplace (docs/webhooks.md), against a real HTTP receiver on loopback,
on SQLite and PostgreSQL. Every request the receiver gets is verified with the
``standardwebhooks`` library, as a marketplace would."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import smtplib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks import Webhook

from mailflow.bootstrap import System, build
from mailflow.config import load
from mailflow.services import conversation
from mailflow.store.models import OutboxMessage, WebhookDelivery, WebhookEvent
from mailflow.web.app import create_app
from tests import factories
from tests.conftest import API_TOKEN
from tests.inbound_support import dsn, handled, inbound_server
from tests.support import MovableClock, RelayHandler, wait_for
from tests.support import deliver as deliver_mail
from tests.webhook_receiver import Receiver, receiver

pytestmark = pytest.mark.postgres

OPEN = {
    "allow_http": True,
    "allow_private_networks": True,
    "retry_base_seconds": 1,
    "timeout_seconds": 2,
    "lease_seconds": 5,
}


@pytest.fixture
def hooks(db_url: str, make_system: Callable[..., System]) -> System:
    return make_system(db_url, webhooks=OPEN, policy={"min_sales": 1})


@pytest.fixture
def api(hooks: System) -> Iterator[TestClient]:
    with TestClient(create_app(hooks), base_url="http://mailflow.test") as client:
        client.headers["Authorization"] = f"Bearer {API_TOKEN}"
        yield client


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


def register(api: TestClient, url: str, events: list[str] | None = None) -> dict[str, Any]:
    response = api.post("/api/v1/webhooks", json={"url": url, "events": events or ["*"]})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


TICKS = itertools.count()
"""Each attempt is signed a second later than the one before (the test takes less than one)."""


def deliver(system: System, **overrides: Any) -> int:
    """Run a webhook worker until nothing is due now; how many it delivered."""
    options: dict[str, Any] = {"poll_seconds": 0.05, "wall": lambda: time.time() + next(TICKS)}
    worker = system.webhook_worker(**{**options, **overrides})
    asyncio.run(worker.run(until_idle=True))
    return worker.delivered_count


def verified(request: Any, secret: str) -> dict[str, Any]:
    return Webhook(secret).verify(request.body, request.headers)  # type: ignore[no-any-return]


class TestEvents:
    def test_a_sales_events_arrive_signed_in_order_with_the_apis_own_objects(
        self, hooks: System, api: TestClient, rx: Receiver
    ) -> None:
        endpoint = register(api, rx.url)
        assert endpoint["secret"].startswith("whsec_")
        assert "secret" not in api.get(f"/api/v1/webhooks/{endpoint['id']}").json()
        seller = factories.seller(api)
        [sale] = factories.order(api, seller["id"])["sales"]
        refused = api.post(f"/api/v1/sales/{sale['id']}/refuse", json={"reason": "out_of_stock"})
        assert refused.status_code == 200

        assert deliver(hooks) == 3
        bodies = [verified(r, endpoint["secret"]) for r in rx.requests]
        by_type = {b["type"]: b for b in bodies}
        assert set(by_type) == {"sale.created", "sale.refused", "listing.deactivated"}
        created, refused_event = by_type["sale.created"], by_type["sale.refused"]
        assert (created["sequence"], refused_event["sequence"]) == (1, 2)
        assert bodies.index(created) < bodies.index(refused_event)
        assert created["id"].startswith("evt_")
        assert created["data"]["status"] == "pending"
        # The refused sale is the sale as the API shows it.
        assert refused_event["data"] == api.get(f"/api/v1/sales/{sale['id']}").json()
        listing = by_type["listing.deactivated"]["data"]
        assert (listing["sku"], listing["active"], listing["stock"]) == (
            refused.json()["sku"],
            False,
            0,
        )
        assert {r.headers["webhook-id"] for r in rx.requests} == {b["id"] for b in bodies}

    def test_a_tier_change_sends_the_sellers_stats_and_filters_apply(
        self, hooks: System, api: TestClient, rx: Receiver
    ) -> None:
        endpoint = register(api, rx.url, ["seller.tier_changed"])
        seller = factories.seller(api)
        [sale] = factories.order(api, seller["id"])["sales"]
        api.post(f"/api/v1/sales/{sale['id']}/accept")
        cancel = {"reason": "cannot_ship", "message": "Désolé"}
        assert api.post(f"/api/v1/sales/{sale['id']}/cancel", json=cancel).status_code == 200

        assert deliver(hooks) == 1
        [body] = [verified(r, endpoint["secret"]) for r in rx.requests]
        assert body["type"] == "seller.tier_changed"
        assert body["sequence"] == 1
        stats = api.get(f"/api/v1/sellers/{seller['id']}/stats").json()
        assert body["data"] == {**stats, "tier_before": "ok"}
        assert body["data"]["tier"] == "over"


class TestRetries:
    def test_500_twice_then_200_is_one_webhook_id_with_three_valid_signatures(
        self, hooks: System, api: TestClient, rx: Receiver, clock: MovableClock
    ) -> None:
        endpoint = register(api, rx.url, ["sale.created"])
        rx.script = [500, 500, 200]
        factories.order(api, factories.seller(api)["id"])
        for _ in range(3):
            deliver(hooks)
            clock.advance(seconds=10)
        assert [r.status for r in rx.requests] == [500, 500, 200]
        assert len({r.headers["webhook-id"] for r in rx.requests}) == 1
        assert len({r.headers["webhook-signature"] for r in rx.requests}) == 3
        assert len({r.headers["webhook-timestamp"] for r in rx.requests}) == 3
        for request in rx.requests:
            verified(request, endpoint["secret"])
        [delivery] = api.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries").json()
        assert delivery["status"] == "delivered"
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
        assert [a["outcome"] for a in delivery["attempts"]] == ["retry", "retry", "delivered"]
        assert len(delivery["attempts"][0]["response"]) == 2048  # the first 2 KB of 5000
        metrics = api.get("/metrics").text
        assert 'mailflow_webhook_deliveries_total{outcome="retried"} 2.0' in metrics
        assert 'mailflow_webhook_deliveries_total{outcome="delivered"} 1.0' in metrics

    def test_a_later_event_waits_for_the_earlier_one_of_its_sale(
        self, hooks: System, api: TestClient, rx: Receiver, clock: MovableClock
    ) -> None:
        endpoint = register(api, rx.url)
        rx.script = [503]
        [sale] = factories.order(api, factories.seller(api)["id"])["sales"]
        api.post(f"/api/v1/sales/{sale['id']}/accept")
        api.post(f"/api/v1/sales/{sale['id']}/ship")
        deliver(hooks)
        # sale.created failed: the later events of the sale were not sent.
        assert [json.loads(r.body)["type"] for r in rx.requests] == ["sale.created"]
        clock.advance(seconds=5)
        deliver(hooks)
        delivered = [verified(r, endpoint["secret"]) for r in rx.delivered()]
        assert [b["type"] for b in delivered] == ["sale.created", "sale.accepted", "sale.shipped"]
        assert [b["sequence"] for b in delivered] == [1, 2, 3]

    def test_given_up_after_give_up_after_hours_then_the_next_goes(
        self, hooks: System, api: TestClient, rx: Receiver, clock: MovableClock
    ) -> None:
        register(api, rx.url)
        rx.script = [500] * 100
        [sale] = factories.order(api, factories.seller(api)["id"])["sales"]
        api.post(f"/api/v1/sales/{sale['id']}/accept")
        deliver(hooks)
        clock.advance(hours=73)
        deliver(hooks)  # the last try fails: given up; the accepted one is tried next
        created = json.loads(rx.requests[0].body)
        assert [json.loads(r.body)["id"] for r in rx.requests[:2]] == [created["id"]] * 2
        assert json.loads(rx.requests[2].body)["type"] == "sale.accepted"

    def test_a_redirect_is_not_followed(self, hooks: System, api: TestClient, rx: Receiver) -> None:
        endpoint = register(api, rx.url, ["sale.created"])
        rx.script = [302]
        factories.order(api, factories.seller(api)["id"])
        deliver(hooks)
        assert len(rx.requests) == 1
        [delivery] = api.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries").json()
        assert delivery["status"] == "queued"
        assert "redirects are not followed" in delivery["last_error"]


class TestGone:
    def test_410_disables_the_endpoint_and_tells_support(
        self, hooks: System, api: TestClient, rx: Receiver
    ) -> None:
        endpoint = register(api, rx.url, ["sale.created"])
        rx.script = [410]
        seller = factories.seller(api)
        factories.order(api, seller["id"])
        deliver(hooks)
        factories.order(api, seller["id"])
        deliver(hooks)
        assert len(rx.requests) == 1
        shown = api.get(f"/api/v1/webhooks/{endpoint['id']}").json()
        assert shown["active"] is False
        assert "410" in shown["disabled_reason"]
        with hooks.db.read() as session:
            notices = session.execute(
                select(OutboxMessage).where(OutboxMessage.template == "support_webhook_disabled")
            ).scalars()
            [notice] = list(notices)
        assert notice.recipient == "support@marketplace.example"
        # No delivery is queued for a disabled endpoint; replay is refused while it is.
        [gone] = api.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries").json()
        assert (gone["status"], gone["attempts"][0]["outcome"]) == ("failed", "gone")
        replay = api.post(f"/api/v1/webhooks/deliveries/{gone['id']}/replay")
        assert replay.status_code == 409
        assert replay.json()["error"] == "endpoint_disabled"
        # Enabled again: replay sends the same event, new events flow.
        assert api.post(f"/api/v1/webhooks/{endpoint['id']}/enable").status_code == 200
        replayed = api.post(f"/api/v1/webhooks/deliveries/{gone['id']}/replay")
        assert replayed.status_code == 200
        factories.order(api, seller["id"])
        assert deliver(hooks) == 2
        # Two sales: sent side by side, in either order.
        bodies = [json.loads(r.body) for r in rx.requests[1:]]
        assert gone["event_id"] in {b["id"] for b in bodies}
        assert [b["sequence"] for b in bodies] == [1, 1]
        for request in rx.requests:
            verified(request, endpoint["secret"])

    def test_failing_past_disable_after_hours_disables(
        self, db_url: str, make_system: Callable[..., System], rx: Receiver, clock: MovableClock
    ) -> None:
        system = make_system(db_url, webhooks={**OPEN, "disable_after_hours": 1})
        with TestClient(create_app(system), base_url="http://mailflow.test") as api:
            api.headers["Authorization"] = f"Bearer {API_TOKEN}"
            endpoint = register(api, rx.url)
            rx.script = [500] * 10
            factories.order(api, factories.seller(api)["id"])
            deliver(system)
            clock.advance(hours=2)
            deliver(system)
            assert api.get(f"/api/v1/webhooks/{endpoint['id']}").json()["active"] is False
            assert len(rx.requests) == 2


class TestSecrets:
    def test_rotation_signs_with_both_secrets_during_the_overlap(
        self, hooks: System, api: TestClient, rx: Receiver, clock: MovableClock
    ) -> None:
        endpoint = register(api, rx.url, ["sale.created"])
        rotated = api.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret").json()
        assert rotated["secret"] != endpoint["secret"]
        factories.order(api, factories.seller(api)["id"])
        deliver(hooks)
        [request] = rx.requests
        assert len(request.headers["webhook-signature"].split(" ")) == 2
        verified(request, endpoint["secret"])
        verified(request, rotated["secret"])
        clock.advance(hours=25)
        factories.order(api, factories.seller(api)["id"])
        deliver(hooks)
        verified(rx.requests[1], rotated["secret"])
        with pytest.raises(Exception, match="signature"):
            verified(rx.requests[1], endpoint["secret"])


class TestWorkers:
    def test_two_workers_deliver_each_event_once(
        self,
        db_url: str,
        hooks: System,
        api: TestClient,
        rx: Receiver,
        make_system: Callable[..., System],
    ) -> None:
        endpoint = register(api, rx.url)
        seller = factories.seller(api)
        for _ in range(6):
            factories.order(api, seller["id"])
        other = make_system(db_url, webhooks=OPEN)

        async def both() -> None:
            await asyncio.gather(
                hooks.webhook_worker(poll_seconds=0.05, concurrency=2).run(until_idle=True),
                other.webhook_worker(poll_seconds=0.05, concurrency=2).run(until_idle=True),
            )

        asyncio.run(both())
        ids = [verified(r, endpoint["secret"])["id"] for r in rx.requests]
        assert len(ids) == 6
        assert len(set(ids)) == 6


class TestAddressGuard:
    @pytest.fixture
    def closed(self, db_url: str, make_system: Callable[..., System]) -> Iterator[TestClient]:
        system = make_system(db_url)
        with TestClient(create_app(system), base_url="http://mailflow.test") as client:
            client.headers["Authorization"] = f"Bearer {API_TOKEN}"
            yield client

    @pytest.fixture
    def names(self, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
        """Names the resolver answers without DNS (the machine has none to ask)."""
        table: dict[str, str] = {}
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host in table:
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port))]
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return table

    @pytest.mark.parametrize(
        ("url", "why"),
        [
            ("http://hooks.example/in", "https://"),
            ("https://127.0.0.1/in", "loopback"),
            ("https://[::1]/in", "loopback"),
            ("https://169.254.169.254/latest/meta-data", "metadata"),
            ("https://10.1.2.3/in", "private"),
            ("https://localhost/in", "loopback"),
            ("https://intranet.example/in", "private"),
            ("https://user:pw@hooks.example/in", "user name"),
            ("ftp://hooks.example/in", "https://"),
        ],
    )
    def test_refused_at_registration(
        self, closed: TestClient, names: dict[str, str], url: str, why: str
    ) -> None:
        names["intranet.example"] = "10.20.30.40"
        response = closed.post("/api/v1/webhooks", json={"url": url, "events": ["*"]})
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        assert error["field"] == "url"
        assert why in error["message"]
        assert closed.get("/api/v1/webhooks").json() == []

    def test_checked_again_at_connection_time(
        self,
        db_url: str,
        make_system: Callable[..., System],
        names: dict[str, str],
        rx: Receiver,
    ) -> None:
        # Registered while the name pointed at a public address; now it points at loopback.
        names["hooks.example"] = "93.184.215.14"
        system = make_system(db_url, webhooks={"allow_http": True})
        with TestClient(create_app(system), base_url="http://mailflow.test") as api:
            api.headers["Authorization"] = f"Bearer {API_TOKEN}"
            endpoint = register(api, f"http://hooks.example:{rx.port}/hooks", ["sale.created"])
            names["hooks.example"] = "127.0.0.1"
            factories.order(api, factories.seller(api)["id"])
            deliver(system)
            assert rx.requests == []
            [delivery] = api.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries").json()
        assert delivery["status"] == "queued"
        assert "loopback" in delivery["last_error"]
        assert delivery["attempts"][0]["status_code"] is None

    def test_bad_input_is_422_and_unknown_ids_404(self, api: TestClient) -> None:
        bad = api.post("/api/v1/webhooks", json={"url": "https://x.example", "events": ["nope"]})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["field"] == "events"
        assert api.post("/api/v1/webhooks", json={"url": 3, "events": []}).status_code == 422
        assert api.get("/api/v1/webhooks/99").status_code == 404
        assert api.delete("/api/v1/webhooks/99").status_code == 404
        assert api.post("/api/v1/webhooks/99/rotate-secret").status_code == 404
        assert api.get("/api/v1/webhooks/99/deliveries").status_code == 404
        assert api.post("/api/v1/webhooks/deliveries/99/replay").status_code == 404

    def test_delete_stops_deliveries(self, hooks: System, api: TestClient, rx: Receiver) -> None:
        endpoint = register(api, rx.url)
        factories.order(api, factories.seller(api)["id"])
        assert api.delete(f"/api/v1/webhooks/{endpoint['id']}").status_code == 204
        assert deliver(hooks) == 0
        assert rx.requests == []
        assert api.get("/api/v1/webhooks").json() == []


class TestWorkerKilled:
    def test_sigkill_of_a_worker_with_events_in_flight_loses_none(
        self, db_url: str, tmp_path: Path, relay: tuple[Any, int]
    ) -> None:
        from tests.integration.test_crash import TOKEN, _log_of, _write_config, mailflow

        with receiver(script=["hang"], hang_seconds=4) as rx:
            config = _write_config(
                tmp_path,
                db_url,
                server="",
                smtp=f"""mode = "relay"
host = "127.0.0.1"
port = {relay[1]}

[webhooks]
allow_http = true
allow_private_networks = true
timeout_seconds = 3
lease_seconds = 4
retry_base_seconds = 1""",
            )
            system = build(load(config).settings)
            try:
                with TestClient(create_app(system), base_url="http://mailflow.test") as api:
                    api.headers["Authorization"] = f"Bearer {TOKEN}"
                    endpoint = register(api, rx.url, ["sale.created"])
                    seller = factories.seller(api)
                    for _ in range(3):
                        factories.order(api, seller["id"])
                with mailflow("worker", "--config", str(config), cwd=tmp_path) as first:
                    wait_for(lambda: len(rx.requests) >= 1, timeout=20)
                    first.send_signal(signal.SIGKILL)
                    assert first.wait(10) == -signal.SIGKILL
                with system.db.read() as session:
                    rows = session.execute(select(WebhookDelivery)).scalars().all()
                    assert [r.status for r in rows] == ["queued"] * 3
                    event_ids = set(session.execute(select(WebhookEvent.event_id)).scalars().all())
                with mailflow("worker", "--config", str(config), cwd=tmp_path) as second:
                    wait_for(
                        lambda: {r.headers["webhook-id"] for r in rx.delivered()} == event_ids,
                        timeout=30,
                    )
                    second.send_signal(signal.SIGTERM)
                    assert second.wait(15) == 0, _log_of(tmp_path, "worker")
                for request in rx.delivered():
                    verified(request, endpoint["secret"])
                with system.db.read() as session:
                    rows = session.execute(select(WebhookDelivery)).scalars().all()
                    assert [r.status for r in rows] == ["delivered"] * 3
            finally:
                system.close()


class TestConsole:
    def test_endpoints_deliveries_attempts_and_replay(
        self, hooks: System, api: TestClient, rx: Receiver
    ) -> None:
        from mailflow.services import accounts
        from tests.integration.test_admin_pages import PASSWORD, csrf_of, sign_in

        endpoint = register(api, rx.url, ["sale.created"])
        rx.script = [410]
        factories.order(api, factories.seller(api)["id"])
        deliver(hooks)
        accounts.create_user(hooks.services, "ops@console.example", "support", PASSWORD)
        with TestClient(create_app(hooks), base_url="http://mailflow.test") as browser:
            assert sign_in(browser, "ops@console.example").status_code == 303
            page = browser.get("/admin/webhooks")
            assert page.status_code == 200
            assert rx.url in page.text
            assert "410 Gone" in page.text
            [delivery] = api.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries").json()
            shown = browser.get(f"/admin/webhooks/deliveries/{delivery['id']}")
            assert shown.status_code == 200
            assert "410" in shown.text and delivery["event_id"] in shown.text
            # Replay while disabled: refused, said so; enable, then replay sends it again.
            token = csrf_of(browser, "/admin/webhooks")
            refused = browser.post(
                f"/admin/webhooks/deliveries/{delivery['id']}/replay", data={"csrf_token": token}
            )
            assert "disabled" in refused.text
            browser.post(f"/admin/webhooks/{endpoint['id']}/enable", data={"csrf_token": token})
            browser.post(
                f"/admin/webhooks/deliveries/{delivery['id']}/replay", data={"csrf_token": token}
            )
            assert deliver(hooks) == 1
            assert rx.requests[-1].headers["webhook-id"] == delivery["event_id"]
            assert browser.get("/admin/webhooks/deliveries/999").status_code == 404


class TestWakeUp:
    def test_a_queued_delivery_notifies_the_workers_of_other_processes(
        self, pg_only_url: str, make_system: Callable[..., System], rx: Receiver
    ) -> None:
        from mailflow.store import wakeup
        from mailflow.store.database import WEBHOOKS_CHANNEL

        system = make_system(pg_only_url, webhooks=OPEN)
        dsn = system.db.listen_dsn()
        assert dsn is not None
        with TestClient(create_app(system), base_url="http://mailflow.test") as api:
            api.headers["Authorization"] = f"Bearer {API_TOKEN}"
            register(api, rx.url, ["sale.created"])
            seller = factories.seller(api)

            async def scenario() -> None:
                stop, woken = asyncio.Event(), asyncio.Event()
                listening = asyncio.create_task(
                    wakeup.listen(dsn, woken.set, stop, channel=WEBHOOKS_CHANNEL)
                )
                await asyncio.wait_for(woken.wait(), 10)  # once, on connecting
                woken.clear()
                await asyncio.to_thread(factories.seller, api)  # no delivery: no notification
                await asyncio.sleep(0.3)
                assert not woken.is_set()
                await asyncio.to_thread(factories.order, api, seller["id"])
                await asyncio.wait_for(woken.wait(), 10)
                stop.set()
                await listening

            asyncio.run(scenario())


class TestInboundEvents:
    """``email.bounced`` and ``message.received`` follow inbound mail's events: a real DSN
    over SMTP to the inbound server, and a message customer service writes on the sale."""

    @pytest.fixture
    def mailing(self, db_url: str, make_system: Callable[..., System]) -> System:
        return make_system(db_url, webhooks=OPEN, inbound={"enabled": True, "domain": "b.test"})

    def test_a_bounce_and_a_message_reach_the_endpoint_with_the_sales_sequence(
        self, mailing: System, rx: Receiver, relay: tuple[RelayHandler, int]
    ) -> None:
        handler, _ = relay
        with TestClient(create_app(mailing), base_url="http://mailflow.test") as api:
            api.headers["Authorization"] = f"Bearer {API_TOKEN}"
            endpoint = register(api, rx.url, ["email.bounced", "message.received"])
            seller = factories.seller(api, email="gone@shop.example")
            [sale] = factories.order(api, seller["id"])["sales"]
            deliver_mail(mailing)
            order_mail = handler.received[-1]
            with inbound_server(mailing) as (_server, port):
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                    verp = order_mail.mail_from
                    client.sendmail("", [verp], dsn(verp, order_mail.rcpt_tos[0]))
                handled(port)
            conversation.write(mailing.services, sale["id"], conversation.Author.SUPPORT, "Bonjour")
            assert deliver(mailing) == 2
            bodies = [verified(r, endpoint["secret"]) for r in rx.requests]
            bounced, message = bodies
            assert (bounced["type"], message["type"]) == ("email.bounced", "message.received")
            # Both count in the sale's sequence, which only these two types reached.
            assert (bounced["sequence"], message["sequence"]) == (1, 2)
            email = bounced["data"]
            assert email["sale_id"] == sale["id"] and email["key"] == "seller_new_sale"
            assert email["to"] == "gone@shop.example" and email["status"] == "bounced"
            assert email["bounce"]["status"].startswith("5.")
            [listed] = [
                e
                for e in api.get(f"/api/v1/sales/{sale['id']}").json()["emails"]
                if e["key"] == "seller_new_sale"
            ]
            assert email["message_id"] == listed["message_id"]
            [written] = api.get(f"/api/v1/sales/{sale['id']}/messages").json()
            assert message["data"] == {
                "sale_id": sale["id"],
                **{k: written[k] for k in ("id", "from", "body", "received_at", "status")},
            }
