"""What every HTTP request goes through: the body limit (413 before parsing), HEAD on every GET
route, the 405's Allow, the request id and access line, the request-duration histogram by
route template, the offline API docs and the home page.

Through the ASGI app (TestClient) on SQLite, and for the streamed body a real uvicorn.
"""

from __future__ import annotations

import json
import logging
import re
import select as io_select
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailflow import logs
from mailflow.bootstrap import System
from mailflow.store.models import Order, Sale
from mailflow.web.app import create_app
from tests import factories
from tests.conftest import API_TOKEN
from tests.support import live_server


def _count(system: System, model: Any) -> int:
    with system.db.read() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture
def small(sqlite_url: str, make_system: Callable[..., System]) -> System:
    """A system whose body limit is 2 KiB (the default is 1 MiB)."""
    return make_system(sqlite_url, server={"max_body_bytes": 2048})


@pytest.fixture
def small_api(small: System) -> Iterator[TestClient]:
    with TestClient(create_app(small), base_url="http://mailflow.test") as client:
        client.headers["Authorization"] = f"Bearer {API_TOKEN}"
        yield client


class TestBodyLimit:
    def test_a_declared_length_over_the_limit_is_413_unread(
        self, small: System, small_api: TestClient
    ) -> None:
        seller = factories.seller(small_api)
        body = factories.order_body(seller["id"])
        body["items"][0]["title"] = "x" * 3000
        response = small_api.post("/api/v1/orders", content=json.dumps(body))
        assert response.status_code == 413
        assert response.json()["error"] == "too_large"
        assert "server.max_body_bytes" in response.json()["message"]
        assert _count(small, Order) == 0

    def test_a_streamed_body_is_cut_at_the_limit(self, small: System) -> None:
        def chunks() -> Iterator[bytes]:
            yield b'{"external_id": "X", "pad": "'
            for _ in range(100):
                yield b"y" * 100
            yield b'"}'

        with TestClient(create_app(small), base_url="http://mailflow.test") as client:
            client.headers["Authorization"] = f"Bearer {API_TOKEN}"
            response = client.post("/api/v1/orders", content=chunks())
        assert response.status_code == 413
        assert _count(small, Order) == 0

    def test_a_streamed_body_on_a_real_server(self, small: System) -> None:
        with live_server(small) as base:
            address = urlsplit(base)
            with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
                conn.sendall(
                    b"POST /api/v1/orders HTTP/1.1\r\nHost: x\r\n"
                    + f"Authorization: Bearer {API_TOKEN}\r\n".encode()
                    + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                for _ in range(5):
                    # The server answers 413 and closes as soon as the body passes the limit:
                    # stop sending then (a write after its close would break the pipe).
                    if io_select.select([conn], [], [], 0.2)[0]:
                        break
                    conn.sendall(b"3E8\r\n" + b"z" * 1000 + b"\r\n")
                answer = conn.recv(65536).decode("latin-1")
        assert answer.startswith("HTTP/1.1 413")

    def test_a_body_within_the_limit_passes_whole(self, small_api: TestClient) -> None:
        seller = factories.seller(small_api)
        response = small_api.post("/api/v1/orders", json=factories.order_body(seller["id"]))
        assert response.status_code == 201

    def test_pages_get_a_plain_413_too(self, small: System) -> None:
        with TestClient(create_app(small), base_url="http://mailflow.test") as client:
            response = client.post("/admin/login", content=b"x" * 5000)
        assert response.status_code == 413
        assert response.headers["content-type"].startswith("text/plain")


class TestHead:
    def test_every_get_route_answers_head_without_a_body(self, api: TestClient) -> None:
        for path in (
            "/healthz",
            "/metrics",
            "/docs",
            "/redoc",
            "/",
            "/openapi.json",
            "/admin/login",
            "/seller/login",
            "/static/mailflow.css",
        ):
            get, head = api.get(path), api.head(path)
            assert head.status_code == get.status_code == 200, path
            assert head.content == b"", path
            assert head.headers["content-type"] == get.headers["content-type"], path

    def test_head_on_an_action_link_changes_nothing(self, api: TestClient, system: System) -> None:
        seller = factories.seller(api)
        sale_id = factories.order(api, seller["id"])["sales"][0]["id"]
        url = system.services.action_url(sale_id, "accept")
        path = urlsplit(url).path
        head = api.head(path)
        assert head.status_code == 200 and head.content == b""
        assert api.get(f"/api/v1/sales/{sale_id}").json()["status"] == "pending"
        with system.db.read() as session:
            assert session.get(Sale, sale_id).status == "pending"  # type: ignore[union-attr]

    def test_405_lists_every_method_of_the_path(self, api: TestClient) -> None:
        response = api.delete("/api/v1/sellers/1/listings/SKU")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD, PUT"


class TestAccess:
    def test_the_request_id_is_taken_or_made_and_echoed(self, api: TestClient) -> None:
        assert (
            api.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
            == "abc-123"
        )
        made = api.get("/healthz").headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        odd = api.get("/healthz", headers={"X-Request-ID": "x" * 200}).headers["x-request-id"]
        assert odd != "x" * 200  # too long: a new one

    def test_one_access_line_per_request_without_tokens(
        self, api: TestClient, system: System, caplog: pytest.LogCaptureFixture
    ) -> None:
        token = urlsplit(system.services.action_url(1, "accept")).path.rsplit("/", 1)[1]
        with caplog.at_level(logging.INFO, logger="mailflow.access"):
            api.get(f"/s/{token}?secret=1", headers={"X-Request-ID": "req-1"})
        [record] = [r for r in caplog.records if r.name == "mailflow.access"]
        assert record.request_id == "req-1"  # type: ignore[attr-defined]
        assert record.route == "/s/{token}"  # type: ignore[attr-defined]
        assert token not in record.getMessage() and "secret" not in record.getMessage()
        assert '"GET /s/{token}"' in record.getMessage()
        line = logs.JsonFormatter().format(record)
        entry = json.loads(line)
        assert entry["request_id"] == "req-1" and entry["status"] in (200, 404)
        assert entry["logger"] == "mailflow.access" and token not in line

    def test_the_duration_histogram_is_labelled_by_route_template(
        self, api: TestClient, system: System
    ) -> None:
        for sale_id in (1, 2, 3):
            api.get(f"/api/v1/sales/{sale_id}")
        api.head("/healthz")
        api.get("/no/such/page")
        text = api.get("/metrics").text
        assert (
            'mailflow_http_request_duration_seconds_count{method="GET",'
            'route="/api/v1/sales/{sale_id}",status="404"} 3.0'
        ) in text
        assert 'route="/healthz",status="200"' in text and 'method="HEAD"' in text
        assert 'route="unmatched"' in text
        assert "/api/v1/sales/1" not in text


class TestDocs:
    def test_docs_and_redoc_are_served_offline_under_a_csp(self, web: TestClient) -> None:
        for path in ("/docs", "/redoc"):
            page = web.get(path)
            assert page.status_code == 200
            csp = page.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-eval" not in csp
            assert "<script>" not in page.text  # no inline script
            sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert sources and all(s.startswith("/") for s in sources), sources
            for source in sources:
                assert web.get(source).status_code == 200, source

    def test_the_home_page_says_where_to_go(self, web: TestClient) -> None:
        page = web.get("/", headers={"Accept-Language": "en"})
        assert page.status_code == 200
        for href in ("/admin", "/seller", "/admin/inbox", "/docs"):
            assert f'href="{href}"' in page.text


def test_a_whole_quantity_written_2_0_is_2(api: TestClient) -> None:
    seller = factories.seller(api)
    body = factories.order_body(seller["id"])
    body["items"][0]["quantity"] = 2.0
    response = api.post("/api/v1/orders", json=body)
    assert response.status_code == 201
    sale = api.get(f"/api/v1/sales/{response.json()['sales'][0]['id']}").json()
    assert sale["quantity"] == 2


class TestOpenApiDocument:
    def test_errors_are_documented_with_mailflows_bodies(self, web: TestClient) -> None:
        doc = web.get("/openapi.json").json()
        accept = doc["paths"]["/api/v1/sales/{sale_id}/accept"]["post"]["responses"]
        assert set(accept) == {"200", "400", "401", "404", "409", "413", "422"}
        ref = {s: accept[s]["content"]["application/json"]["schema"]["$ref"] for s in accept}
        assert ref["409"].endswith("/ConflictOut") and ref["422"].endswith("/InvalidOut")
        assert ref["200"].endswith("/SaleChangeOut") and ref["413"].endswith("/TooLargeOut")
        invalid = doc["components"]["schemas"]["FieldProblem"]["properties"]
        assert set(invalid) == {"field", "message", "type"}
        conflict = doc["components"]["schemas"]["ConflictOut"]["properties"]
        assert {"error", "status", "hint"} <= set(conflict)
        assert "HTTPValidationError" not in json.dumps(doc["paths"])
        for path, operations in doc["paths"].items():
            for method, operation in operations.items():
                ok = [s for s in operation["responses"] if s.startswith("2")]
                if ok == ["204"]:
                    continue  # no content: nothing to type
                content = operation["responses"][ok[0]].get("content", {})
                schema = next(iter(content.values()), {}).get("schema", {})
                assert schema and schema != {}, f"{method} {path} has an untyped answer"

    def test_email_fields_carry_format_email(self, web: TestClient) -> None:
        schemas = web.get("/openapi.json").json()["components"]["schemas"]
        for model, field in (
            ("SellerIn", "email"),
            ("BuyerIn", "email"),
            ("TestSendIn", "to"),
            ("SellerOut", "email"),
        ):
            assert schemas[model]["properties"][field]["format"] == "email", model
        assert schemas["SellerIn"]["examples"]


SAMPLE = {
    "endpoint_id": "1",
    "delivery_id": "1",
    "sale_id": "1",
    "seller_id": "1",
    "sku": "SKU",
    "key": "seller_new_sale",
    "locale": "fr",
    "version": "1",
}


def test_head_is_answered_on_every_get_operation(api: TestClient) -> None:
    seller = factories.seller(api)
    factories.order(api, seller["id"])
    doc = api.get("/openapi.json").json()
    gets = [path for path, ops in doc["paths"].items() if "get" in ops]
    assert len(gets) >= 8
    for template in gets:
        path = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], template)
        get, head = api.get(path), api.head(path)
        assert head.status_code == get.status_code != 405, path
        assert head.content == b"", path
