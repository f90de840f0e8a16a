"""Orders in: idempotency, amounts, multi-seller orders, concurrency, suspended sellers."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailflow.bootstrap import System
from mailflow.store.models import (
    Buyer,
    Listing,
    Order,
    OutboxMessage,
    Payment,
    Sale,
    SaleEvent,
    Seller,
)
from tests import factories
from tests.conftest import API_TOKEN
from tests.support import MovableClock, RelayHandler, deliver, live_server

TABLES = (Seller, Buyer, Listing, Order, Sale, Payment, SaleEvent, OutboxMessage)


def _counts(system: System) -> dict[str, int]:
    with system.db.read() as session:
        return {
            model.__tablename__: session.execute(
                select(func.count()).select_from(model)
            ).scalar_one()
            for model in TABLES
        }


def _count(system: System, model: type, **where: object) -> int:
    with system.db.read() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.execute(query).scalar_one()  # type: ignore[no-any-return]


def _suspend(system: System, seller_id: int, until: Any) -> None:
    with system.db.transaction() as session:
        seller = session.get(Seller, seller_id)
        assert seller is not None
        seller.suspended_until = until
        session.add(seller)


class TestIdempotencyKey:
    def test_same_key_twice_is_201_then_200_with_the_same_body_and_one_email(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller = factories.seller(api)
        body = factories.order_body(seller["id"])
        headers = {"Idempotency-Key": "key-0001"}

        first = api.post("/api/v1/orders", json=body, headers=headers)
        assert first.status_code == 201, first.text
        counts = _counts(system)
        second = api.post("/api/v1/orders", json=body, headers=headers)
        assert second.status_code == 200, second.text
        assert second.json() == first.json()
        assert _counts(system) == counts

        assert deliver(system) == 1
        [mail] = relay[0].messages()
        assert mail["X-Mailflow-Template"] == "seller_new_sale"
        assert mail["To"].addresses[0].addr_spec == seller["email"]
        third = api.post("/api/v1/orders", json=body, headers=headers)
        assert third.status_code == 200
        assert third.json() == first.json()
        assert deliver(system) == 0
        assert len(relay[0].received) == 1

    def test_same_key_with_a_different_body_is_409_and_creates_nothing(
        self, api: TestClient, system: System
    ) -> None:
        seller = factories.seller(api)
        body = factories.order_body(seller["id"])
        headers = {"Idempotency-Key": "key-0002"}
        assert api.post("/api/v1/orders", json=body, headers=headers).status_code == 201
        counts = _counts(system)

        changed = json.loads(json.dumps(body))
        changed["items"][0]["quantity"] = 2
        other = factories.order_body(seller["id"])
        for different in (changed, other):
            response = api.post("/api/v1/orders", json=different, headers=headers)
            assert response.status_code == 409, response.text
            assert response.json()["error"] == "idempotency_key_reused"
        assert _counts(system) == counts

    def test_repeated_external_id_without_a_key_returns_the_first_result(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller = factories.seller(api)
        body = factories.order_body(seller["id"], external_id="MKT-42")
        first = api.post("/api/v1/orders", json=body)
        assert first.status_code == 201
        assert first.json()["external_id"] == "MKT-42"
        counts = _counts(system)

        again = api.post("/api/v1/orders", json=body)
        assert again.status_code == 200
        assert again.json() == first.json()
        assert _counts(system) == counts
        assert _count(system, Order, external_id="MKT-42") == 1
        assert deliver(system) == 1
        assert len(relay[0].received) == 1

    def test_repeated_external_id_under_a_new_key_returns_the_first_result(
        self, api: TestClient, system: System
    ) -> None:
        seller = factories.seller(api)
        body = factories.order_body(seller["id"])
        first = api.post("/api/v1/orders", json=body, headers={"Idempotency-Key": "a"})
        assert first.status_code == 201
        counts = _counts(system)
        again = api.post("/api/v1/orders", json=body, headers={"Idempotency-Key": "b"})
        assert again.status_code == 200
        assert again.json()["order_id"] == first.json()["order_id"]
        assert _counts(system) == counts

    def test_a_repeat_after_the_sale_moved_shows_the_current_status(
        self, api: TestClient, system: System
    ) -> None:
        seller = factories.seller(api)
        body = factories.order_body(seller["id"])
        first = api.post("/api/v1/orders", json=body, headers={"Idempotency-Key": "k"}).json()
        sale_id = first["sales"][0]["id"]
        assert api.post(f"/api/v1/sales/{sale_id}/accept").status_code == 200
        counts = _counts(system)
        again = api.post("/api/v1/orders", json=body, headers={"Idempotency-Key": "k"})
        assert again.status_code == 200
        assert again.json()["order_id"] == first["order_id"]
        assert [s["id"] for s in again.json()["sales"]] == [sale_id]
        assert _counts(system) == counts


class TestAmounts:
    @pytest.mark.parametrize(
        ("price", "stored", "cents"),
        [
            pytest.param(12.5, "12.50", 1250, id="number-12.5"),
            pytest.param(12, "12.00", 1200, id="integer-12"),
            pytest.param(0.1, "0.10", 10, id="number-0.1"),
            pytest.param(19.99, "19.99", 1999, id="number-19.99"),
            pytest.param(0.29, "0.29", 29, id="number-0.29"),
            pytest.param("12.5", "12.50", 1250, id="string-12.5"),
            pytest.param("7", "7.00", 700, id="string-7"),
            pytest.param("0", "0.00", 0, id="string-0"),
            pytest.param("1000000.00", "1000000.00", 100_000_000, id="string-max"),
        ],
    )
    def test_unit_price_is_stored_to_the_cent(
        self, api: TestClient, system: System, price: Any, stored: str, cents: int
    ) -> None:
        seller = factories.seller(api)
        body = factories.order_body(seller["id"])
        body["items"][0]["unit_price"] = price
        response = api.post("/api/v1/orders", json=body)
        assert response.status_code == 201, response.text
        sale_id = response.json()["sales"][0]["id"]
        sale = api.get(f"/api/v1/sales/{sale_id}").json()
        assert sale["amount"] == stored
        assert sale["payment"]["amount"] == stored
        assert sale["payment"]["state"] == "authorized"
        with system.db.read() as session:
            row = session.get(Sale, sale_id)
            assert row is not None
            assert (row.unit_price_cents, row.amount_cents) == (cents, cents)

    @pytest.mark.parametrize(
        ("quantity", "price", "amount"),
        [(3, "19.99", "59.97"), (1, "0.01", "0.01"), (7, 0.1, "0.70"), (10_000, "0.99", "9900.00")],
    )
    def test_amount_is_quantity_times_unit_price(
        self, api: TestClient, quantity: int, price: Any, amount: str
    ) -> None:
        seller = factories.seller(api)
        body = factories.order_body(seller["id"])
        body["items"][0].update(quantity=quantity, unit_price=price)
        sale_id = api.post("/api/v1/orders", json=body).json()["sales"][0]["id"]
        sale = api.get(f"/api/v1/sales/{sale_id}").json()
        assert sale["quantity"] == quantity
        assert sale["amount"] == amount
        assert sale["payment"] == {
            "state": "authorized",
            "amount": amount,
            "refunded": "0.00",
            "commission": "0.00",
            "payout": "0.00",
        }

    def test_currency_defaults_to_eur_and_is_kept(self, api: TestClient) -> None:
        seller = factories.seller(api)
        eur = factories.order(api, seller["id"])["sales"][0]["id"]
        usd = factories.order(api, seller["id"], currency="USD")["sales"][0]["id"]
        assert api.get(f"/api/v1/sales/{eur}").json()["currency"] == "EUR"
        assert api.get(f"/api/v1/sales/{usd}").json()["currency"] == "USD"


class TestMultiSellerOrder:
    def test_one_sale_per_item_each_seller_told_in_their_language(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        dupont = factories.seller(api, name="Librairie Dupont", locale="fr")
        smith = factories.seller(api, name="Smith Books", locale="en")
        body = factories.order_body(dupont["id"])
        body["items"] = [
            {
                "seller_id": dupont["id"],
                "sku": "FR-1",
                "title": "Le Petit Prince",
                "quantity": 2,
                "unit_price": "12.50",
            },
            {
                "seller_id": smith["id"],
                "sku": "EN-1",
                "title": "The Hobbit",
                "quantity": 3,
                "unit_price": 9.99,
            },
            {
                "seller_id": dupont["id"],
                "sku": "FR-2",
                "title": "L'Étranger",
                "quantity": 1,
                "unit_price": "7",
            },
        ]
        response = api.post("/api/v1/orders", json=body)
        assert response.status_code == 201, response.text
        order = response.json()
        sales = order["sales"]
        assert [s["seller_id"] for s in sales] == [dupont["id"], smith["id"], dupont["id"]]
        assert all(s["status"] == "pending" for s in sales)
        assert len({s["id"] for s in sales}) == 3
        assert _count(system, Order) == 1
        assert _count(system, OutboxMessage, template="seller_new_sale") == 3

        expected = {sales[0]["id"]: "25.00", sales[1]["id"]: "29.97", sales[2]["id"]: "7.00"}
        for sale_id, amount in expected.items():
            sale = api.get(f"/api/v1/sales/{sale_id}").json()
            assert sale["order_id"] == order["order_id"]
            assert sale["status"] == "pending"
            assert sale["payment"]["state"] == "authorized"
            assert sale["payment"]["amount"] == amount == sale["amount"]

        assert deliver(system) == 3
        mails = relay[0].messages()
        to_dupont = [m for m in mails if m["To"].addresses[0].addr_spec == dupont["email"]]
        to_smith = [m for m in mails if m["To"].addresses[0].addr_spec == smith["email"]]
        assert len(to_dupont) == 2 and len(to_smith) == 1
        [english] = to_smith
        assert english["Subject"].startswith("New sale")
        assert "The Hobbit" in english["Subject"]
        assert f"no. {sales[1]['id']}" in english["Subject"]
        subjects = sorted(str(m["Subject"]) for m in to_dupont)
        assert all(s.startswith("Nouvelle vente") for s in subjects)
        assert any("Le Petit Prince" in s for s in subjects)
        assert any("L'Étranger" in s for s in subjects)
        assert not any("The Hobbit" in s for s in subjects)
        for mail in mails:
            assert len(mail.get_all("To")) == 1

    def test_same_seller_and_sku_twice_share_one_listing(
        self, api: TestClient, system: System
    ) -> None:
        seller = factories.seller(api)
        body = factories.order_body(seller["id"])
        body["items"] = [body["items"][0], {**body["items"][0], "quantity": 2}]
        response = api.post("/api/v1/orders", json=body)
        assert response.status_code == 201, response.text
        assert len(response.json()["sales"]) == 2
        assert _count(system, Listing, seller_id=seller["id"]) == 1


def _post(base: str, body: bytes, key: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(f"{base}/api/v1/orders", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {"raw": error.read().decode(errors="replace")}


class TestConcurrentOrders:
    @pytest.mark.parametrize("key", [None, "race-key"], ids=["external-id", "idempotency-key"])
    def test_8_identical_posts_make_one_order_one_sale_one_email(
        self,
        api: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
        key: str | None,
    ) -> None:
        seller = factories.seller(api)
        body = json.dumps(factories.order_body(seller["id"])).encode()
        barrier = threading.Barrier(8)

        with live_server(system) as base:

            def post(_: int) -> tuple[int, dict[str, Any]]:
                barrier.wait(timeout=30)
                return _post(base, body, key)

            with ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(pool.map(post, range(8)))

        codes = sorted(code for code, _ in answers)
        assert all(code in (200, 201) for code in codes), answers
        assert codes.count(201) == 1, answers
        assert len({a["order_id"] for _, a in answers}) == 1
        assert len({json.dumps(a, sort_keys=True) for _, a in answers}) == 1
        assert _count(system, Order) == 1
        assert _count(system, Sale) == 1
        assert _count(system, Payment) == 1
        assert _count(system, OutboxMessage) == 1
        assert _count(system, Buyer) == 1
        assert deliver(system) == 1
        assert len(relay[0].received) == 1


class TestSuspendedSeller:
    def test_new_sales_of_a_suspended_seller_are_409(
        self, api: TestClient, system: System, clock: MovableClock
    ) -> None:
        seller = factories.seller(api)
        _suspend(system, seller["id"], clock.now + timedelta(days=14))
        counts = _counts(system)
        response = api.post("/api/v1/orders", json=factories.order_body(seller["id"]))
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "seller_suspended"
        assert _counts(system) == counts

    def test_one_suspended_seller_refuses_the_whole_order(
        self, api: TestClient, system: System, clock: MovableClock
    ) -> None:
        active = factories.seller(api)
        suspended = factories.seller(api)
        _suspend(system, suspended["id"], clock.now + timedelta(hours=1))
        body = factories.order_body(active["id"])
        body["items"].append({**body["items"][0], "seller_id": suspended["id"], "sku": "X-2"})
        counts = _counts(system)
        response = api.post("/api/v1/orders", json=body)
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "seller_suspended"
        assert _counts(system) == counts

    def test_a_suspension_that_has_ended_no_longer_blocks(
        self, api: TestClient, system: System, clock: MovableClock
    ) -> None:
        seller = factories.seller(api)
        _suspend(system, seller["id"], clock.now + timedelta(days=1))
        body = factories.order_body(seller["id"])
        assert api.post("/api/v1/orders", json=body).status_code == 409
        clock.advance(days=1, seconds=1)
        response = api.post("/api/v1/orders", json=body)
        assert response.status_code == 201, response.text

    def test_an_inactive_listing_is_409_listing_unavailable(
        self, api: TestClient, system: System
    ) -> None:
        seller = factories.seller(api)
        body = factories.order_body(seller["id"])
        sale_id = api.post("/api/v1/orders", json=body).json()["sales"][0]["id"]
        assert api.post(f"/api/v1/sales/{sale_id}/refuse").status_code == 200
        counts = _counts(system)
        again = factories.order_body(seller["id"])
        again["items"][0]["sku"] = body["items"][0]["sku"]
        response = api.post("/api/v1/orders", json=again)
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "listing_unavailable"
        assert _counts(system) == counts
