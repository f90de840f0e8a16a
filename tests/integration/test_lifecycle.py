"""After acceptance: cancel, withdraw, money, deadlines and listings (docs/states.md,
docs/emails.md#every-email-kind)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailflow.bootstrap import System
from mailflow.services import sweeps
from mailflow.store.models import LedgerEntry, OutboxMessage, SaleEvent
from tests import factories
from tests.support import MovableClock, RelayHandler, deliver, html_of, links_in, path_of, text_of


def _accepted_sale(api: TestClient, **seller: object) -> tuple[dict, int]:
    s = factories.seller(api, **seller)
    sale_id = factories.order(api, s["id"])["sales"][0]["id"]
    assert api.post(f"/api/v1/sales/{sale_id}/accept").status_code == 200
    return s, sale_id


def _templates(system: System, sale_id: int) -> list[str]:
    with system.db.read() as session:
        return list(
            session.execute(
                select(OutboxMessage.template)
                .where(OutboxMessage.sale_id == sale_id)
                .order_by(OutboxMessage.id)
            ).scalars()
        )


def _ledger(system: System, sale_id: int) -> list[tuple[str, int]]:
    with system.db.read() as session:
        rows = session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount_cents)
            .where(LedgerEntry.sale_id == sale_id)
            .order_by(LedgerEntry.id)
        ).all()
    return [(k, a) for k, a in rows]


class TestCancel:
    MESSAGE = "Bonjour,\nle livre est abîmé <b>désolé</b> & navré.\n— Librairie"

    def test_cancel_refunds_voids_payout_keeps_commission_and_tells_everyone(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller, sale_id = _accepted_sale(api, name="Librairie Dupont")
        response = api.post(
            f"/api/v1/sales/{sale_id}/cancel",
            json={"reason": "cannot_ship", "message": self.MESSAGE},
        )
        assert response.status_code == 200, response.text
        sale = response.json()
        assert sale["status"] == "cancelled" and sale["reason"] == "cannot_ship"
        assert sale["payment"] == {
            "state": "refunded",
            "amount": "12.50",
            "refunded": "12.50",
            "commission": "1.25",
            "payout": "0.00",
        }
        assert [e["action"] for e in sale["events"]] == ["create", "accept", "cancel"]
        assert _ledger(system, sale_id) == [
            ("capture", 1250),
            ("commission", 125),
            ("payout", 1125),
            ("refund", 1250),
            ("payout_void", -1125),
        ]
        assert _templates(system, sale_id) == [
            "seller_new_sale",
            "buyer_sale_accepted",
            "buyer_sale_cancelled",
            "support_sale_cancelled",
            "seller_sale_cancelled",
        ]
        deliver(system)
        mails = {m["X-Mailflow-Template"]: m for m in relay[0].messages()}
        buyer = mails["buyer_sale_cancelled"]
        assert self.MESSAGE in text_of(buyer)
        html = html_of(buyer)
        assert "&lt;b&gt;désolé&lt;/b&gt; &amp; navré" in html
        assert "<b>désolé</b>" not in html
        assert "12,50\u00a0€" in text_of(buyer)
        support = mails["support_sale_cancelled"]
        assert support["To"].addresses[0].addr_spec == "support@marketplace.example"
        assert "Librairie Dupont" in text_of(support) and str(sale_id) in text_of(support)
        assert mails["seller_sale_cancelled"]["To"].addresses[0].addr_spec == seller["email"]

        again = api.post(f"/api/v1/sales/{sale_id}/cancel", json={"reason": "other"})
        assert again.status_code == 200 and again.json()["changed"] is False
        assert len(_templates(system, sale_id)) == 5

    def test_cancelling_a_pending_sale_says_refuse_instead(self, api: TestClient) -> None:
        s = factories.seller(api)
        sale_id = factories.order(api, s["id"])["sales"][0]["id"]
        response = api.post(f"/api/v1/sales/{sale_id}/cancel", json={"reason": "other"})
        assert response.status_code == 409
        assert "refuse it instead" in response.json()["hint"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"reason": "bored"}, "reason"),
            ({}, "reason"),
            ({"reason": "other", "message": "x" * 2001}, "message"),
            ({"reason": "other", "message": "null\x00byte"}, "message"),
        ],
    )
    def test_bad_cancel_input_is_422_and_changes_nothing(
        self, api: TestClient, body: dict, field: str
    ) -> None:
        _, sale_id = _accepted_sale(api)
        response = api.post(f"/api/v1/sales/{sale_id}/cancel", json=body)
        assert response.status_code == 422
        assert [d["field"] for d in response.json()["detail"]] == [field]
        if body.get("reason") == "bored":
            assert "out_of_stock" in response.json()["detail"][0]["message"]
        assert api.get(f"/api/v1/sales/{sale_id}").json()["status"] == "accepted"


class TestWithdraw:
    def test_withdrawal_after_acceptance_refunds_without_commission(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        _, sale_id = _accepted_sale(api)
        response = api.post(f"/api/v1/sales/{sale_id}/withdraw", json={"note": "appel du 27/11"})
        assert response.status_code == 200
        sale = response.json()
        assert sale["status"] == "withdrawn"
        assert sale["payment"]["state"] == "refunded"
        assert sale["payment"]["commission"] == "0.00"
        assert sale["payment"]["payout"] == "0.00"
        assert sale["events"][-1]["actor"] == "support"
        assert sale["events"][-1]["note"] == "appel du 27/11"
        assert _templates(system, sale_id)[-1] == "buyer_withdrawal_confirmed"
        deliver(system)
        delivered = {m["X-Mailflow-Template"] for m in relay[0].messages()}
        assert "buyer_withdrawal_confirmed" in delivered

    def test_withdrawal_while_pending_releases(self, api: TestClient) -> None:
        s = factories.seller(api)
        sale_id = factories.order(api, s["id"])["sales"][0]["id"]
        sale = api.post(f"/api/v1/sales/{sale_id}/withdraw").json()
        assert sale["status"] == "withdrawn"
        assert sale["payment"]["state"] == "released"

    def test_withdrawal_after_shipping_is_409(self, api: TestClient) -> None:
        _, sale_id = _accepted_sale(api)
        api.post(f"/api/v1/sales/{sale_id}/ship")
        assert api.post(f"/api/v1/sales/{sale_id}/withdraw").status_code == 409


class TestDeadlines:
    def test_reminder_once_then_expiry_with_buyer_notice(
        self,
        api: TestClient,
        system: System,
        clock: MovableClock,
        relay: tuple[RelayHandler, int],
    ) -> None:
        s = factories.seller(api)
        sale_id = factories.order(api, s["id"])["sales"][0]["id"]
        clock.advance(hours=35.9)
        assert sweeps.sweep(system.services) == sweeps.SweepReport(0, 0)
        clock.advance(hours=0.2)  # 36.1 h: within 12 h of the 48 h deadline
        assert sweeps.sweep(system.services) == sweeps.SweepReport(0, 1)
        assert sweeps.sweep(system.services) == sweeps.SweepReport(0, 0)
        deliver(system)
        mails = {m["X-Mailflow-Template"]: m for m in relay[0].messages()}
        reminder = mails["seller_deadline_reminder"]
        assert len(links_in(reminder)) == 3

        clock.advance(hours=11.8)  # 47.9 h
        assert sweeps.sweep(system.services).expired == 0
        clock.advance(hours=0.2)
        assert sweeps.sweep(system.services) == sweeps.SweepReport(1, 0)
        sale = api.get(f"/api/v1/sales/{sale_id}").json()
        assert sale["status"] == "expired"
        assert sale["payment"]["state"] == "released"
        assert sale["events"][-1]["actor"] == "system"
        assert sale["events"][-1]["channel"] == "sweep"
        assert _templates(system, sale_id) == [
            "seller_new_sale",
            "seller_deadline_reminder",
            "buyer_sale_expired",
        ]
        # The seller's refuse link now answers that the sale expired.
        _, refuse, _ = links_in(mails["seller_new_sale"])
        assert api.post(path_of(refuse)).status_code == 409

    def test_an_action_after_the_deadline_expires_the_sale_instead(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        clock: MovableClock,
        relay: tuple[RelayHandler, int],
    ) -> None:
        s = factories.seller(api)
        late, on_time = (factories.order(api, s["id"])["sales"][0]["id"] for _ in range(2))
        other = factories.seller(api, email="other@example.com")
        clicked = factories.order(api, other["id"])["sales"][0]["id"]
        deliver(system)
        accept_link = next(
            links_in(m)[0] for m in relay[0].messages() if "other@example.com" in m["To"]
        )
        clock.advance(hours=47.9)
        assert api.post(f"/api/v1/sales/{on_time}/accept").status_code == 200
        clock.advance(hours=0.1)  # 48 h: no sweep has run, the sales are still pending

        answer = api.post(f"/api/v1/sales/{late}/accept")
        assert answer.status_code == 409
        assert answer.json()["status"] == "expired"
        assert answer.json()["error"] == "illegal_transition"
        sale = api.get(f"/api/v1/sales/{late}").json()
        assert sale["status"] == "expired"
        assert sale["payment"]["state"] == "released"
        assert sale["events"][-1]["note"] == "deadline passed before accept"
        assert _templates(system, late) == ["seller_new_sale", "buyer_sale_expired"]
        # The same again answers the same, and sends nothing more.
        assert api.post(f"/api/v1/sales/{late}/accept").status_code == 409
        assert api.post(f"/api/v1/sales/{late}/refuse").status_code == 409
        assert _templates(system, late) == ["seller_new_sale", "buyer_sale_expired"]

        # An emailed accept link after the deadline: the page says the sale expired.
        page = web.post(path_of(accept_link))
        assert page.status_code == 409
        assert _templates(system, clicked) == ["seller_new_sale", "buyer_sale_expired"]
        # The sweep has nothing left but sales nobody touched; the accepted one stays.
        assert sweeps.expire_overdue(system.services) == 0
        assert api.get(f"/api/v1/sales/{on_time}").json()["status"] == "accepted"

    def test_fractional_deadline(
        self, api: TestClient, make_system: Callable[..., System], db_url: str, clock: MovableClock
    ) -> None:
        system = make_system(db_url, policy={"acceptance_deadline_hours": 0.5})
        s = factories.seller(api)
        factories.order(api, s["id"])
        clock.advance(minutes=29)
        assert sweeps.expire_overdue(system.services) == 0
        clock.advance(minutes=1)
        assert sweeps.expire_overdue(system.services) == 1

    def test_expiry_racing_a_refuse_click_has_one_winner(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        clock: MovableClock,
        relay: tuple[RelayHandler, int],
    ) -> None:
        s = factories.seller(api)
        sale_ids = [factories.order(api, s["id"])["sales"][0]["id"] for _ in range(6)]
        deliver(system)
        refuse_links = [links_in(m)[1] for m in relay[0].messages()]
        clock.advance(hours=49)
        results: list[int] = []
        sweep = threading.Thread(target=lambda: sweeps.expire_overdue(system.services))
        sweep.start()
        for link in refuse_links:
            results.append(web.post(path_of(link)).status_code)
        sweep.join()
        assert set(results) <= {200, 409}
        with system.db.read() as session:
            for sale_id in sale_ids:
                moves = session.execute(
                    select(func.count())
                    .select_from(SaleEvent)
                    .where(SaleEvent.sale_id == sale_id, SaleEvent.action != "create")
                ).scalar_one()
                notices = session.execute(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        OutboxMessage.sale_id == sale_id,
                        OutboxMessage.template.in_(["buyer_sale_refused", "buyer_sale_expired"]),
                    )
                ).scalar_one()
                assert (moves, notices) == (1, 1)


class TestListings:
    def test_out_of_stock_refusal_deactivates_and_restock_reactivates(
        self, api: TestClient
    ) -> None:
        s = factories.seller(api)
        body = factories.order_body(s["id"])
        sku = body["items"][0]["sku"]
        sale_id = api.post("/api/v1/orders", json=body).json()["sales"][0]["id"]
        listing = api.get(f"/api/v1/sellers/{s['id']}/listings/{sku}").json()
        assert listing["active"] is True and listing["stock"] is None

        api.post(f"/api/v1/sales/{sale_id}/refuse", json={"reason": "out_of_stock"})
        listing = api.get(f"/api/v1/sellers/{s['id']}/listings/{sku}").json()
        assert listing["active"] is False and listing["stock"] == 0

        again = factories.order_body(s["id"])
        again["items"][0]["sku"] = sku
        blocked = api.post("/api/v1/orders", json=again)
        assert blocked.status_code == 409
        assert blocked.json()["error"] == "listing_unavailable"

        put = api.put(
            f"/api/v1/sellers/{s['id']}/listings/{sku}", json={"stock": 3, "active": True}
        )
        assert put.status_code == 200 and put.json()["stock"] == 3
        assert api.post("/api/v1/orders", json=again).status_code == 201

    def test_refusal_for_another_reason_keeps_the_listing(self, api: TestClient) -> None:
        s = factories.seller(api)
        body = factories.order_body(s["id"])
        sale_id = api.post("/api/v1/orders", json=body).json()["sales"][0]["id"]
        api.post(f"/api/v1/sales/{sale_id}/refuse", json={"reason": "pricing_error"})
        sku = body["items"][0]["sku"]
        assert api.get(f"/api/v1/sellers/{s['id']}/listings/{sku}").json()["active"] is True

    def test_unknown_listing_and_bad_stock(self, api: TestClient) -> None:
        s = factories.seller(api)
        assert api.get(f"/api/v1/sellers/{s['id']}/listings/NOPE").status_code == 404
        factories.order(api, s["id"])
        response = api.put(f"/api/v1/sellers/{s['id']}/listings/NOPE", json={"stock": -1})
        assert response.status_code == 422
        assert response.json()["detail"][0]["field"] == "stock"
