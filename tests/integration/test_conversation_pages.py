"""The sale's conversation on the seller portal (the seller writes to the buyer) and on the
console's sale page (customer service writes to both), on SQLite and PostgreSQL: the page
shows the messages, the form relays them by email with a Reply-To into the conversation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mailflow.bootstrap import System
from tests import factories
from tests.integration.test_admin_pages import (  # noqa: F401 - fixtures
    browser,
    csrf_of,
    password_hash,
    support,
    users,
)
from tests.integration.test_seller_pages import _login
from tests.support import RelayHandler, deliver

pytestmark = pytest.mark.postgres
DOMAIN = "reply.market.example"


@pytest.fixture
def system(db_url: str, make_system: Callable[..., System]) -> System:
    return make_system(db_url, inbound={"enabled": True, "domain": DOMAIN})


def _sale(api: TestClient) -> tuple[dict[str, Any], dict[str, Any], int]:
    seller = factories.seller(api)
    body = factories.order_body(seller["id"])
    response = api.post("/api/v1/orders", json=body)
    assert response.status_code == 201, response.text
    return seller, body["buyer"], response.json()["sales"][0]["id"]


def _sent(system: System, relay: RelayHandler, key: str) -> list[Any]:
    deliver(system)
    return [m for m in relay.messages() if m["X-Mailflow-Template"] == key]


def test_the_seller_writes_to_the_buyer_from_the_sale_page(
    api: TestClient, web: TestClient, system: System, relay: tuple[RelayHandler, int]
) -> None:
    seller, buyer, sale_id = _sale(api)
    token = _login(web, system, seller["email"])
    page = web.get(f"/seller/sales/{sale_id}")
    assert page.status_code == 200 and 'id="conversation"' in page.text

    words = "Bonjour,\nJe l'envoie demain <b>sans faute</b>."
    done = web.post(
        f"/seller/sales/{sale_id}/messages",
        data={"csrf_token": token, "body": words},
        follow_redirects=False,
    )
    assert done.status_code == 303
    page = web.get(f"/seller/sales/{sale_id}")
    assert "Je l&#39;envoie demain &lt;b&gt;sans faute&lt;/b&gt;." in page.text

    [email] = _sent(system, relay[0], "buyer_seller_message")
    assert buyer["email"] in str(email["To"])
    assert str(email["Reply-To"]).endswith("@" + DOMAIN)
    assert "sans faute" in email.get_body(("plain",)).get_content()
    [raw] = [
        r.raw
        for r in relay[0].received
        if r.message["X-Mailflow-Template"] == "buyer_seller_message"
    ]
    assert seller["email"] not in raw.decode("ascii", "replace")

    [message] = api.get(f"/api/v1/sales/{sale_id}/messages").json()
    assert (message["from"], message["channel"], message["status"]) == (
        "seller",
        "portal",
        "relayed",
    )


def test_a_blank_message_or_one_without_its_token_sends_nothing(
    api: TestClient, web: TestClient, system: System, relay: tuple[RelayHandler, int]
) -> None:
    seller, _buyer, sale_id = _sale(api)
    token = _login(web, system, seller["email"])
    blank = web.post(
        f"/seller/sales/{sale_id}/messages", data={"csrf_token": token, "body": "  \n "}
    )
    assert blank.status_code == 200
    forged = web.post(f"/seller/sales/{sale_id}/messages", data={"body": "hello"})
    assert forged.status_code == 403
    other_seller = factories.seller(api)
    other_sale = factories.order(api, other_seller["id"])["sales"][0]["id"]
    foreign = web.post(
        f"/seller/sales/{other_sale}/messages", data={"csrf_token": token, "body": "hello"}
    )
    assert foreign.status_code == 404
    assert api.get(f"/api/v1/sales/{sale_id}/messages").json() == []
    assert api.get(f"/api/v1/sales/{other_sale}/messages").json() == []
    assert _sent(system, relay[0], "buyer_seller_message") == []


def test_customer_service_writes_to_both_parties_from_the_console(
    api: TestClient,
    support: TestClient,  # noqa: F811 - the fixture imported above
    system: System,
    relay: tuple[RelayHandler, int],
) -> None:
    seller, buyer, sale_id = _sale(api)
    page = f"/admin/sales/{sale_id}"
    done = support.post(
        f"/admin/sales/{sale_id}/messages",
        data={"csrf_token": csrf_of(support, page), "body": "Nous regardons votre commande."},
        follow_redirects=False,
    )
    assert done.status_code == 303
    shown = support.get(page)
    assert "Nous regardons votre commande." in shown.text
    to_buyer = _sent(system, relay[0], "buyer_seller_message")
    to_seller = _sent(system, relay[0], "seller_buyer_message")
    assert [buyer["email"] in str(m["To"]) for m in to_buyer] == [True]
    assert [seller["email"] in str(m["To"]) for m in to_seller] == [True]
    assert "service client" in str(to_buyer[0]["Subject"])
    [message] = api.get(f"/api/v1/sales/{sale_id}/messages").json()
    assert (message["from"], message["channel"]) == ("support", "console")
