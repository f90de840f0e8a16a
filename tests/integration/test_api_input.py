"""Bad input on the JSON API: every field of sellers and orders, path ids, bodies, tokens.

Every bad value is answered 422 naming exactly the field at fault, and creates nothing: no
seller, no buyer, no order, no sale, no listing, no outbox row. Names, titles, SKUs and
addresses can never smuggle a header into an email; non-ASCII names reach the relay intact.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
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
from tests.support import RelayHandler, deliver

MISSING = object()
TABLES = (Seller, Buyer, Listing, Order, Sale, Payment, SaleEvent, OutboxMessage)
INJECTION = "Bob\r\nBcc: evil@x.example"


def _counts(system: System) -> dict[str, int]:
    with system.db.read() as session:
        return {
            model.__tablename__: session.execute(
                select(func.count()).select_from(model)
            ).scalar_one()
            for model in TABLES
        }


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``body`` with the dotted ``path`` set to ``value`` (or removed)."""
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target: Any = body
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is MISSING:
        del target[last]
    elif callable(value):
        target[last] = value(body)
    else:
        target[last] = value
    return body


def _bad(path: str, value: Any, label: str | None = None) -> Any:
    if label is None:
        label = "missing" if value is MISSING else repr(value)[:40]
    return pytest.param(path, value, id=f"{path}={label}")


def _assert_invalid(response: Any, field: str) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid", body
    detail = body["detail"]
    assert detail, body
    assert {d["field"] for d in detail} == {field}, body
    for d in detail:
        assert isinstance(d["message"], str) and d["message"]
        assert isinstance(d["type"], str) and d["type"]
    return detail  # type: ignore[no-any-return]


def _seller_body() -> dict[str, Any]:
    return {"name": "Librairie Dupont", "email": "dupont@shop.example", "locale": "fr"}


def _many_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    item = body["items"][0]
    return [{**item, "sku": f"SKU-{n}"} for n in range(201)]


CONTROL_CHARACTERS = [
    pytest.param("\r\n", id="crlf"),
    pytest.param("\n", id="lf"),
    pytest.param("\r", id="cr"),
    pytest.param("\x00", id="nul"),
    pytest.param("\t", id="tab"),
    pytest.param("\x1b", id="esc"),
    pytest.param("\x7f", id="del"),
    pytest.param("\x85", id="nel"),
    pytest.param("\x9b", id="c1-csi"),
    pytest.param("\u2028", id="line-separator"),
    pytest.param("\u2029", id="paragraph-separator"),
]
# Shown as nothing, or turning the text around: a name holding one spoofs a To: header.
INVISIBLE_CHARACTERS = [
    pytest.param("\u202e", id="right-to-left-override"),
    pytest.param("\u202a", id="left-to-right-embedding"),
    pytest.param("\u2066", id="left-to-right-isolate"),
    pytest.param("\u2069", id="pop-directional-isolate"),
    pytest.param("\u200f", id="right-to-left-mark"),
    pytest.param("\u200b", id="zero-width-space"),
    pytest.param("\u2060", id="word-joiner"),
    pytest.param("\ufeff", id="byte-order-mark"),
]


BAD_SELLERS = [
    _bad("name", MISSING),
    _bad("name", ""),
    _bad("name", "   "),
    _bad("name", None),
    _bad("name", 42),
    _bad("name", ["Dupont"]),
    _bad("name", "x" * 201, "201-chars"),
    _bad("name", INJECTION, "crlf-bcc"),
    _bad("email", MISSING),
    _bad("email", ""),
    _bad("email", "not-an-email"),
    _bad("email", "dupont@"),
    _bad("email", "@shop.example"),
    _bad("email", "dupont@shop"),
    _bad("email", "dupont@@shop.example"),
    _bad("email", "dupont @shop.example"),
    _bad("email", "Dupont <dupont@shop.example>"),
    _bad("email", "dupont@shop.example, eve@x.example"),
    _bad("email", "dupont@shop.example\r\nBcc: evil@x.example", "crlf-bcc"),
    _bad("email", "a" * 320 + "@shop.example", "too-long"),
    _bad("email", None),
    _bad("email", 7),
    _bad("locale", "de"),
    _bad("locale", "FR"),
    _bad("locale", "fr_FR"),
    _bad("locale", ""),
    _bad("locale", "fr\n"),
    _bad("locale", None),
    _bad("locale", 1),
    _bad("id", 7, "extra"),
    _bad("suspended_until", None, "extra"),
    _bad("role", "admin", "extra"),
]


# Schema validation happens before the database is touched: these tables run on SQLite only;
# the cases that reach the database run on both.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
class TestSellerInput:
    @pytest.mark.parametrize(("field", "value"), BAD_SELLERS)
    def test_bad_value_is_422_naming_the_field_and_creates_nothing(
        self, api: TestClient, system: System, field: str, value: Any
    ) -> None:
        before = _counts(system)
        response = api.post("/api/v1/sellers", json=_with(_seller_body(), field, value))
        _assert_invalid(response, field)
        assert _counts(system) == before

    @pytest.mark.parametrize("char", CONTROL_CHARACTERS)
    @pytest.mark.parametrize("field", ["name", "email"])
    def test_control_characters_are_refused(
        self, api: TestClient, system: System, field: str, char: str
    ) -> None:
        body = _seller_body()
        body[field] = "dupont" + char + "x@shop.example" if field == "email" else f"Bob{char}x"
        before = _counts(system)
        _assert_invalid(api.post("/api/v1/sellers", json=body), field)
        assert _counts(system) == before

    @pytest.mark.parametrize("char", INVISIBLE_CHARACTERS)
    def test_invisible_and_bidirectional_controls_are_refused_in_the_name(
        self, api: TestClient, system: System, char: str
    ) -> None:
        before = _counts(system)
        response = api.post("/api/v1/sellers", json={**_seller_body(), "name": f"Bob{char}x"})
        _assert_invalid(response, "name")
        assert "invisible or bidirectional" in response.text
        assert _counts(system) == before

    def test_joiners_that_scripts_and_emoji_need_are_kept(self, api: TestClient) -> None:
        family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji, joined by ZWJ
        persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want", with a ZWNJ
        name = f"Famille {family} {persian}"
        response = api.post("/api/v1/sellers", json={**_seller_body(), "name": name})
        assert response.status_code == 201, response.text
        assert response.json()["name"] == name

    def test_good_seller_is_created_with_its_values(self, api: TestClient) -> None:
        response = api.post("/api/v1/sellers", json={**_seller_body(), "locale": "en"})
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["id"] >= 1
        assert (body["name"], body["email"], body["locale"]) == (
            "Librairie Dupont",
            "dupont@shop.example",
            "en",
        )
        assert api.get(f"/api/v1/sellers/{body['id']}").json()["email"] == "dupont@shop.example"

    def test_locale_defaults_to_fr(self, api: TestClient) -> None:
        response = api.post("/api/v1/sellers", json=_with(_seller_body(), "locale", MISSING))
        assert response.status_code == 201, response.text
        assert response.json()["locale"] == "fr"


BAD_ORDERS = [
    _bad("external_id", MISSING),
    _bad("external_id", ""),
    _bad("external_id", "   "),
    _bad("external_id", None),
    _bad("external_id", 123),
    _bad("external_id", "x" * 201, "201-chars"),
    _bad("external_id", "ORD-1\r\nX-Evil: 1", "crlf"),
    _bad("external_id", "ORD\x00", "nul"),
    _bad("buyer", MISSING),
    _bad("buyer", None),
    _bad("buyer", "buyer@mail.example"),
    _bad("buyer", []),
    _bad("buyer.email", MISSING),
    _bad("buyer.email", ""),
    _bad("buyer.email", "nope"),
    _bad("buyer.email", "buyer@mail"),
    _bad("buyer.email", "Buyer <buyer@mail.example>"),
    _bad("buyer.email", "buyer@mail.example\r\nBcc: evil@x.example", "crlf-bcc"),
    _bad("buyer.email", "a" * 320 + "@mail.example", "too-long"),
    _bad("buyer.email", None),
    _bad("buyer.email", 5),
    _bad("buyer.name", MISSING),
    _bad("buyer.name", ""),
    _bad("buyer.name", " "),
    _bad("buyer.name", None),
    _bad("buyer.name", 5),
    _bad("buyer.name", "x" * 201, "201-chars"),
    _bad("buyer.name", INJECTION, "crlf-bcc"),
    _bad("buyer.name", "Bob\x1b[31m", "ansi"),
    _bad("buyer.locale", "de"),
    _bad("buyer.locale", "EN"),
    _bad("buyer.locale", ""),
    _bad("buyer.locale", None),
    _bad("buyer.admin", True, "extra"),
    _bad("items", MISSING),
    _bad("items", []),
    _bad("items", None),
    _bad("items", "SKU-1"),
    _bad("items", {}),
    _bad("items", _many_items, "201-items"),
    _bad("items.0.seller_id", MISSING),
    _bad("items.0.seller_id", 0),
    _bad("items.0.seller_id", -1),
    _bad("items.0.seller_id", "abc"),
    _bad("items.0.seller_id", 1.5),
    _bad("items.0.seller_id", None),
    _bad("items.0.seller_id", 2**31, "2**31"),
    _bad("items.0.seller_id", 10**30, "10**30"),
    _bad("items.0.sku", MISSING),
    _bad("items.0.sku", ""),
    _bad("items.0.sku", " "),
    _bad("items.0.sku", None),
    _bad("items.0.sku", 12),
    _bad("items.0.sku", "x" * 101, "101-chars"),
    _bad("items.0.sku", "SKU\r\n1", "crlf"),
    _bad("items.0.title", MISSING),
    _bad("items.0.title", ""),
    _bad("items.0.title", "  "),
    _bad("items.0.title", None),
    _bad("items.0.title", "x" * 301, "301-chars"),
    _bad("items.0.title", "Le Petit Prince\r\nBcc: evil@x.example", "crlf-bcc"),
    _bad("items.0.quantity", 0),
    _bad("items.0.quantity", -1),
    _bad("items.0.quantity", 1.5),
    _bad("items.0.quantity", "x"),
    _bad("items.0.quantity", None),
    _bad("items.0.quantity", 10_001),
    _bad("items.0.quantity", 10**30, "10**30"),
    _bad("items.0.quantity", "2", "string-2"),
    _bad("items.0.quantity", True, "true"),
    # 2.0 is an integer to JSON Schema, so to the OpenAPI document: it is accepted as 2
    # (tests/integration/test_first_run.py).
    _bad("items.0.unit_price", MISSING),
    _bad("items.0.unit_price", "abc"),
    _bad("items.0.unit_price", ""),
    _bad("items.0.unit_price", "-1"),
    _bad("items.0.unit_price", "-0.01"),
    _bad("items.0.unit_price", -5),
    _bad("items.0.unit_price", "12.555"),
    _bad("items.0.unit_price", 12.555),
    _bad("items.0.unit_price", "NaN"),
    _bad("items.0.unit_price", "sNaN"),
    _bad("items.0.unit_price", "Infinity"),
    _bad("items.0.unit_price", "-Infinity"),
    _bad("items.0.unit_price", True),
    _bad("items.0.unit_price", False),
    _bad("items.0.unit_price", None),
    _bad("items.0.unit_price", []),
    _bad("items.0.unit_price", {"amount": "12.50"}),
    _bad("items.0.unit_price", "1000000.01"),
    _bad("items.0.unit_price", "1e30"),
    _bad("items.0.unit_price", 1e30),
    _bad("items.0.unit_price", 10**30, "10**30"),
    _bad("items.0.unit_price", "9" * 40, "40-nines"),
    _bad("items.0.unit_price", " 12.50", "leading-space"),
    _bad("items.0.unit_price", "12.50 ", "trailing-space"),
    _bad("items.0.unit_price", "1e2", "exponent"),
    _bad("items.0.unit_price", "+12.50", "plus-sign"),
    _bad("items.0.unit_price", "1_000", "digit-separator"),
    _bad("items.0.unit_price", "12.", "trailing-point"),
    _bad("items.0.unit_price", ".50", "leading-point"),
    _bad("items.0.discount", "5", "extra"),
    _bad("currency", "EURO"),
    _bad("currency", "xyz"),
    _bad("currency", "eur"),
    _bad("currency", ""),
    _bad("currency", None),
    _bad("currency", 978),
    _bad("total", "12.50", "extra"),
    _bad("status", "accepted", "extra"),
]


@pytest.fixture
def seller_id(api: TestClient) -> int:
    return int(factories.seller(api)["id"])


class TestOrderInput:
    @SQLITE_ONLY
    @pytest.mark.parametrize(("field", "value"), BAD_ORDERS)
    def test_bad_value_is_422_naming_the_field_and_creates_nothing(
        self, api: TestClient, system: System, seller_id: int, field: str, value: Any
    ) -> None:
        before = _counts(system)
        body = _with(factories.order_body(seller_id), field, value)
        _assert_invalid(api.post("/api/v1/orders", json=body), field)
        assert _counts(system) == before

    @SQLITE_ONLY
    @pytest.mark.parametrize("char", CONTROL_CHARACTERS)
    @pytest.mark.parametrize(
        ("field", "make"),
        [
            pytest.param("buyer.name", lambda c: f"Bob{c}x", id="buyer.name"),
            pytest.param("buyer.email", lambda c: f"bob{c}x@mail.example", id="buyer.email"),
            pytest.param("items.0.sku", lambda c: f"SKU{c}1", id="sku"),
            pytest.param("items.0.title", lambda c: f"Le Petit{c}Prince", id="title"),
            pytest.param("external_id", lambda c: f"ORD{c}1", id="external_id"),
        ],
    )
    def test_control_characters_are_refused(
        self,
        api: TestClient,
        system: System,
        seller_id: int,
        field: str,
        make: Callable[[str], str],
        char: str,
    ) -> None:
        before = _counts(system)
        body = _with(factories.order_body(seller_id), field, make(char))
        _assert_invalid(api.post("/api/v1/orders", json=body), field)
        assert _counts(system) == before

    @SQLITE_ONLY
    @pytest.mark.parametrize("char", INVISIBLE_CHARACTERS)
    @pytest.mark.parametrize(
        "field", ["buyer.name", "buyer.email", "items.0.sku", "items.0.title", "external_id"]
    )
    def test_invisible_and_bidirectional_controls_are_refused(
        self, api: TestClient, system: System, seller_id: int, field: str, char: str
    ) -> None:
        before = _counts(system)
        value = f"bob{char}x@mail.example" if field == "buyer.email" else f"Le Petit{char}Prince"
        body = _with(factories.order_body(seller_id), field, value)
        _assert_invalid(api.post("/api/v1/orders", json=body), field)
        assert _counts(system) == before

    def test_unknown_seller_is_422_naming_the_item(
        self, api: TestClient, system: System, seller_id: int
    ) -> None:
        before = _counts(system)
        body = _with(factories.order_body(seller_id), "items.0.seller_id", 999_999)
        detail = _assert_invalid(api.post("/api/v1/orders", json=body), "items.0.seller_id")
        assert "999999" in detail[0]["message"]
        assert _counts(system) == before

    def test_unknown_seller_in_a_later_item_names_that_item_and_creates_nothing(
        self, api: TestClient, system: System, seller_id: int
    ) -> None:
        body = factories.order_body(seller_id)
        good = body["items"][0]
        body["items"] = [good, {**good, "sku": "SKU-X"}, {**good, "seller_id": 424_242}]
        before = _counts(system)
        _assert_invalid(api.post("/api/v1/orders", json=body), "items.2.seller_id")
        assert _counts(system) == before

    def test_two_bad_fields_are_both_named(
        self, api: TestClient, system: System, seller_id: int
    ) -> None:
        body = factories.order_body(seller_id)
        body["buyer"]["email"] = "nope"
        body["items"][0]["quantity"] = 0
        response = api.post("/api/v1/orders", json=body)
        assert response.status_code == 422
        fields = {d["field"] for d in response.json()["detail"]}
        assert fields == {"buyer.email", "items.0.quantity"}

    @pytest.mark.parametrize(
        "key", [pytest.param("", id="empty"), pytest.param("k" * 201, id="201-chars")]
    )
    def test_bad_idempotency_key_is_422_naming_the_header(
        self, api: TestClient, system: System, seller_id: int, key: str
    ) -> None:
        before = _counts(system)
        response = api.post(
            "/api/v1/orders",
            json=factories.order_body(seller_id),
            headers={"Idempotency-Key": key},
        )
        _assert_invalid(response, "idempotency-key")
        assert _counts(system) == before

    def test_the_boundaries_are_accepted(self, api: TestClient, seller_id: int) -> None:
        body = factories.order_body(seller_id, currency="USD")
        item = body["items"][0]
        item.update(sku="s" * 100, title="t" * 300, quantity=1, unit_price="1000000.00")
        body["buyer"]["name"] = "n" * 200
        body["external_id"] = "e" * 200
        response = api.post("/api/v1/orders", json=body)
        assert response.status_code == 201, response.text
        sale = api.get(f"/api/v1/sales/{response.json()['sales'][0]['id']}").json()
        assert (sale["amount"], sale["currency"], sale["sku"]) == ("1000000.00", "USD", "s" * 100)

    def test_largest_quantity_times_largest_price_is_never_a_500(
        self, api: TestClient, system: System, seller_id: int
    ) -> None:
        # Each value is valid on its own; the line total (10^12 cents) must either be stored
        # exactly or be refused as bad input, never crash the request.
        body = factories.order_body(seller_id)
        body["items"][0].update(quantity=10_000, unit_price="1000000.00")
        before = _counts(system)
        api_500_safe = TestClient(api.app, raise_server_exceptions=False)
        api_500_safe.headers["Authorization"] = f"Bearer {API_TOKEN}"
        response = api_500_safe.post("/api/v1/orders", json=body)
        assert response.status_code in (201, 422), response.text
        if response.status_code == 201:
            sale = api.get(f"/api/v1/sales/{response.json()['sales'][0]['id']}").json()
            assert sale["amount"] == sale["payment"]["amount"] == "10000000000.00"
        else:
            assert response.json()["detail"][0]["field"].startswith("items.0")
            assert _counts(system) == before


@SQLITE_ONLY
class TestPathIds:
    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/sales/abc",
            "/api/v1/sales/0",
            "/api/v1/sales/-1",
            "/api/v1/sales/1.5",
            "/api/v1/sales/99999999999999999999",
            "/api/v1/sales/2147483648",
        ],
    )
    def test_bad_sale_id_is_422_never_500(self, api: TestClient, path: str) -> None:
        _assert_invalid(api.get(path), "sale_id")

    @pytest.mark.parametrize("action", ["accept", "refuse", "ship"])
    @pytest.mark.parametrize("sale_id", ["abc", "0", "99999999999999999999"])
    def test_bad_sale_id_on_an_action_is_422(
        self, api: TestClient, system: System, action: str, sale_id: str
    ) -> None:
        before = _counts(system)
        _assert_invalid(api.post(f"/api/v1/sales/{sale_id}/{action}"), "sale_id")
        assert _counts(system) == before

    @pytest.mark.parametrize("seller", ["abc", "0", "99999999999999999999"])
    def test_bad_seller_id_is_422(self, api: TestClient, seller: str) -> None:
        _assert_invalid(api.get(f"/api/v1/sellers/{seller}"), "seller_id")


class TestActionBodies:
    def test_unknown_refuse_reason_is_422_listing_the_valid_ones(
        self, api: TestClient, system: System, seller_id: int
    ) -> None:
        sale_id = factories.order(api, seller_id)["sales"][0]["id"]
        before = _counts(system)
        response = api.post(f"/api/v1/sales/{sale_id}/refuse", json={"reason": "nope"})
        [detail] = _assert_invalid(response, "reason")
        for reason in ("out_of_stock", "cannot_ship", "pricing_error", "other"):
            assert reason in detail["message"]
        assert _counts(system) == before
        assert api.get(f"/api/v1/sales/{sale_id}").json()["status"] == "pending"

    @pytest.mark.parametrize(
        ("action", "body", "field"),
        [
            pytest.param("refuse", {"reason": None}, "reason", id="refuse-null-reason"),
            pytest.param("refuse", {"reason": 1}, "reason", id="refuse-int-reason"),
            pytest.param("refuse", {"reason": "other", "x": 1}, "x", id="refuse-extra"),
            pytest.param("accept", {"force": True}, "force", id="accept-extra"),
            pytest.param("ship", {"carrier": "x"}, "carrier", id="ship-extra"),
        ],
    )
    def test_bad_action_body_is_422_and_changes_nothing(
        self,
        api: TestClient,
        system: System,
        seller_id: int,
        action: str,
        body: dict[str, Any],
        field: str,
    ) -> None:
        sale_id = factories.order(api, seller_id)["sales"][0]["id"]
        before = _counts(system)
        _assert_invalid(api.post(f"/api/v1/sales/{sale_id}/{action}", json=body), field)
        assert _counts(system) == before
        assert api.get(f"/api/v1/sales/{sale_id}").json()["status"] == "pending"


@SQLITE_ONLY
class TestBodies:
    @pytest.mark.parametrize("path", ["/api/v1/sellers", "/api/v1/orders"])
    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param(b'{"name": ', id="truncated"),
            pytest.param(b"{'name': 'x'}", id="single-quotes"),
            pytest.param(b'{"name": "x",}', id="trailing-comma"),
            pytest.param(b'{"name": "x"} garbage', id="trailing-garbage"),
            pytest.param(b'{"name": "\xff"}', id="invalid-utf8"),
        ],
    )
    def test_malformed_json_is_400(
        self, api: TestClient, system: System, path: str, raw: bytes
    ) -> None:
        before = _counts(system)
        response = api.post(path, content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "malformed_json"
        assert _counts(system) == before

    @pytest.mark.parametrize("path", ["/api/v1/sellers", "/api/v1/orders"])
    @pytest.mark.parametrize(
        "raw",
        [b"[]", b'[{"name": "x"}]', b'"a string"', b"42", b"true", b"null"],
        ids=["empty-list", "list", "string", "number", "true", "null"],
    )
    def test_a_body_that_is_not_an_object_is_4xx(
        self, api: TestClient, system: System, path: str, raw: bytes
    ) -> None:
        before = _counts(system)
        response = api.post(path, content=raw, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"] in ("invalid", "malformed_json")
        assert _counts(system) == before

    def test_no_body_is_4xx(self, api: TestClient, system: System) -> None:
        before = _counts(system)
        response = api.post("/api/v1/orders")
        assert 400 <= response.status_code < 500, response.text
        assert _counts(system) == before


AUTH_ENDPOINTS = [
    pytest.param("POST", "/api/v1/sellers", id="post-sellers"),
    pytest.param("POST", "/api/v1/orders", id="post-orders"),
    pytest.param("GET", "/api/v1/sales/1", id="get-sale"),
    pytest.param("POST", "/api/v1/sales/1/refuse", id="refuse"),
    pytest.param("GET", "/api/v1/sellers/1", id="get-seller"),
]


@SQLITE_ONLY
class TestAuth:
    @pytest.mark.parametrize(("method", "path"), AUTH_ENDPOINTS)
    def test_no_authorization_header_is_401_with_a_bearer_challenge(
        self, web: TestClient, system: System, method: str, path: str
    ) -> None:
        before = _counts(system)
        response = web.request(method, path, json=_seller_body())
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert _counts(system) == before

    @pytest.mark.parametrize(
        "authorization",
        [
            pytest.param("Bearer wrong-token", id="wrong-token"),
            pytest.param(f"Bearer {API_TOKEN[:-1]}", id="prefix-of-the-token"),
            pytest.param(f"Bearer {API_TOKEN}x", id="token-plus-one"),
            pytest.param("Bearer ", id="empty-bearer"),
            pytest.param("Bearer", id="scheme-only"),
            pytest.param("Basic dXNlcjpwYXNz", id="basic"),
            pytest.param(f"Basic {API_TOKEN}", id="basic-with-the-token"),
            pytest.param(API_TOKEN, id="token-without-scheme"),
        ],
    )
    @pytest.mark.parametrize(("method", "path"), AUTH_ENDPOINTS[:3])
    def test_a_wrong_token_or_scheme_is_401(
        self, web: TestClient, system: System, method: str, path: str, authorization: str
    ) -> None:
        before = _counts(system)
        response = web.request(
            method, path, json=_seller_body(), headers={"Authorization": authorization}
        )
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert _counts(system) == before

    def test_the_token_is_checked_before_the_body(self, web: TestClient) -> None:
        response = web.post("/api/v1/orders", json={"nonsense": True})
        assert response.status_code == 401

    def test_the_token_is_checked_before_parsing_json(self, web: TestClient) -> None:
        # docs/api.md#authentication: no token → 401; an anonymous caller learns nothing
        # about the body.
        response = web.post(
            "/api/v1/orders", content=b"{", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401

    def test_the_right_token_is_accepted(self, web: TestClient) -> None:
        response = web.post(
            "/api/v1/sellers",
            json=_seller_body(),
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        assert response.status_code == 201

    def test_healthz_needs_no_token(self, web: TestClient) -> None:
        response = web.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_docs_and_openapi_answer(self, web: TestClient) -> None:
        assert web.get("/docs").status_code == 200
        spec = web.get("/openapi.json")
        assert spec.status_code == 200
        paths = spec.json()["paths"]
        assert "/api/v1/orders" in paths
        assert "/api/v1/sellers" in paths


class TestHeaderSafety:
    """What callers send reaches emails as data, never as headers."""

    @pytest.mark.parametrize(
        ("where", "field"),
        [
            pytest.param("seller", "name", id="seller-name"),
            pytest.param("seller", "email", id="seller-email"),
            pytest.param("order", "buyer.name", id="buyer-name"),
            pytest.param("order", "buyer.email", id="buyer-email"),
            pytest.param("order", "items.0.title", id="title"),
            pytest.param("order", "items.0.sku", id="sku"),
        ],
    )
    def test_bcc_injection_is_refused_and_nothing_is_sent(
        self,
        api: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
        seller_id: int,
        where: str,
        field: str,
    ) -> None:
        value = "bob@x.example\r\nBcc: evil@x.example" if "email" in field else INJECTION
        deliver(system)
        already = len(relay[0].received)
        before = _counts(system)
        if where == "seller":
            response = api.post("/api/v1/sellers", json=_with(_seller_body(), field, value))
        else:
            body = _with(factories.order_body(seller_id), field, value)
            response = api.post("/api/v1/orders", json=body)
        _assert_invalid(response, field)
        assert _counts(system) == before
        assert deliver(system) == 0
        assert len(relay[0].received) == already
        assert all("evil@x.example" not in r.rcpt_tos for r in relay[0].received)

    def test_non_ascii_seller_name_reaches_the_relay_in_clean_headers(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller = factories.seller(api, name="Éloïse Müller", email="eloise@shop.example")
        assert seller["name"] == "Éloïse Müller"
        factories.order(api, seller["id"])
        assert deliver(system) == 1
        [received] = relay[0].received
        assert received.rcpt_tos == ["eloise@shop.example"]
        message = received.message
        for header in ("To", "From", "Subject", "Message-ID", "Date"):
            assert len(message.get_all(header) or []) == 1, header
        for header in ("Bcc", "Cc", "Reply-To"):
            assert message.get_all(header) is None, header
        [to] = message["To"].addresses
        assert to.display_name == "Éloïse Müller"
        assert to.addr_spec == "eloise@shop.example"
        assert received.raw.isascii()
        _assert_clean_head(received.raw)

    def test_non_ascii_buyer_name_and_title_decode_in_both_emails(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller = factories.seller(api, name="Maison Ærø")
        body = factories.order_body(seller["id"])
        body["buyer"] = {"email": "zoe@mail.example", "name": "Zoë Ångström-Nuñez", "locale": "fr"}
        body["items"][0]["title"] = "Café crème « édition spéciale » — 東京"
        sale_id = api.post("/api/v1/orders", json=body).json()["sales"][0]["id"]
        assert api.post(f"/api/v1/sales/{sale_id}/accept").status_code == 200
        assert deliver(system) == 2
        by_template = {m["X-Mailflow-Template"]: m for m in relay[0].messages()}
        seller_mail = by_template["seller_new_sale"]
        assert "Café crème « édition spéciale » — 東京" in seller_mail["Subject"]
        assert seller_mail["To"].addresses[0].display_name == "Maison Ærø"
        buyer_mail = by_template["buyer_sale_accepted"]
        [to] = buyer_mail["To"].addresses
        assert (to.display_name, to.addr_spec) == ("Zoë Ångström-Nuñez", "zoe@mail.example")
        for received in relay[0].received:
            assert len(received.message.get_all("To")) == 1
            assert received.message.get_all("Bcc") is None
            _assert_clean_head(received.raw)

    def test_longest_non_ascii_title_and_name_make_a_valid_message(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        # 300 characters (the limit) of a three-byte character: the encoded Subject must be
        # folded into RFC 5322 lines (CRLF, at most 998 characters), not one huge line.
        name = "É" * 200
        title = "€" * 300
        seller = factories.seller(api, name=name)
        body = factories.order_body(seller["id"])
        body["items"][0]["title"] = title
        assert api.post("/api/v1/orders", json=body).status_code == 201
        assert deliver(system) == 1
        [received] = relay[0].received
        _assert_clean_head(received.raw)
        message = received.message
        assert message["To"].addresses[0].display_name == name
        assert title in message["Subject"]

    def test_internationalized_seller_address_is_refused_or_deliverable(
        self,
        api: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
    ) -> None:
        # Syntax-valid (RFC 6531/IDNA) but not ASCII: mailflow composes ASCII-only messages, so
        # it must either refuse the address up front or carry it through to the relay.
        unsafe = TestClient(api.app, raise_server_exceptions=False)
        unsafe.headers["Authorization"] = f"Bearer {API_TOKEN}"
        created = unsafe.post(
            "/api/v1/sellers", json={**_seller_body(), "email": "dupont@bücher.example"}
        )
        if created.status_code == 422:
            _assert_invalid(created, "email")
            return
        assert created.status_code == 201, created.text
        ordered = unsafe.post("/api/v1/orders", json=factories.order_body(created.json()["id"]))
        assert ordered.status_code == 201, ordered.text
        assert deliver(system) == 1
        assert len(relay[0].received) == 1


def _assert_clean_head(raw: bytes) -> None:
    head, sep, _ = raw.partition(b"\r\n\r\n")
    assert sep, "no blank line after the headers"
    lines = head.split(b"\r\n")
    for line in lines:
        assert b"\n" not in line and b"\r" not in line, f"bare CR or LF in a header: {line!r}"
        assert len(line) <= 998, f"header line of {len(line)} characters"
    names = [line.split(b":", 1)[0].lower() for line in lines if line[:1] not in (b" ", b"\t")]
    for name in (b"to", b"from", b"subject"):
        assert names.count(name) == 1, (name, names)
    assert b"bcc" not in names
