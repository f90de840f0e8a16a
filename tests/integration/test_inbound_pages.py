"""The suppression API and the console's inbound pages, over the ASGI app, after a real
bounce received over SMTP; ``[inbound]`` settings and their defaults."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from mailflow.bootstrap import System
from mailflow.config import ConfigError, load
from mailflow.store.models import AdminUser
from mailflow.web.app import create_app
from tests import factories
from tests.conftest import SECRET
from tests.inbound_support import inbound_server
from tests.integration.test_admin_pages import csrf_of, post, sign_in
from tests.integration.test_inbound import DOMAIN, bounce, outbox, suppressed
from tests.support import RelayHandler, deliver

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery staple"


@pytest.fixture
def system(db_url: str, make_system: Callable[..., System]) -> System:
    return make_system(db_url, inbound={"enabled": True, "domain": DOMAIN})


@pytest.fixture
def bounced(api: TestClient, system: System, relay: tuple[RelayHandler, int]) -> dict[str, str]:
    """A seller whose order email bounced for good, over the inbound server."""
    handler, _ = relay
    seller = factories.seller(api)
    sale = factories.order(api, seller["id"])["sales"][0]
    deliver(system)
    mail = handler.received[0]
    with inbound_server(system) as (_, port):
        assert bounce(port, mail.mail_from, mail.rcpt_tos[0])[0] == 250
    return {"email": seller["email"], "seller": str(seller["id"]), "sale": str(sale["id"])}


@pytest.fixture
def console(system: System) -> Iterator[TestClient]:
    with system.db.transaction() as session:
        session.add(
            AdminUser(
                email="support@console.example",
                role="support",
                password_hash=PasswordHasher().hash(PASSWORD),
                created_at=system.clock(),
            )
        )
    with TestClient(create_app(system), base_url="http://mailflow.test") as client:
        assert sign_in(client, "support@console.example", PASSWORD).status_code == 303
        yield client


# -- API ------------------------------------------------------------------------------------


def test_the_suppression_api_lists_and_lifts(api: TestClient, bounced: dict[str, str]) -> None:
    listed = api.get("/api/v1/suppressions")
    assert listed.status_code == 200
    [entry] = listed.json()["suppressions"]
    assert entry["email"] == bounced["email"] and entry["reason"] == "hard_bounce"
    assert entry["detail"].startswith("5.1.1 ")
    assert api.get("/api/v1/suppressions?limit=1&offset=1").json() == {
        "suppressions": [],
        "total": 1,
    }
    assert api.delete(f"/api/v1/suppressions/{bounced['email']}").json()["requeued"] == 0
    again = api.delete(f"/api/v1/suppressions/{bounced['email']}")
    assert again.status_code == 404 and again.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("method", "url", "status", "error"),
    [
        ("get", "/api/v1/suppressions?limit=0", 422, "invalid"),
        ("get", "/api/v1/suppressions?offset=-1", 422, "invalid"),
        ("delete", "/api/v1/suppressions/not-an-address", 422, "invalid"),
        ("delete", "/api/v1/suppressions/a%0d%0aBcc:x@y.example", 422, "invalid"),
        ("delete", "/api/v1/suppressions/nobody@shop.example", 404, "not_found"),
    ],
)
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    api: TestClient, bounced: dict[str, str], method: str, url: str, status: int, error: str
) -> None:
    answer = getattr(api, method)(url)
    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert api.get("/api/v1/suppressions").json()["total"] == 1


def test_the_suppression_api_needs_the_token(web: TestClient) -> None:
    assert web.get("/api/v1/suppressions").status_code == 401
    assert web.delete("/api/v1/suppressions/a@b.example").status_code == 401


def test_the_routes_are_typed_in_the_openapi_document(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    listing = paths["/api/v1/suppressions"]["get"]["responses"]
    assert {"200", "401", "422"} <= set(listing)
    assert "SuppressionsOut" in str(listing["200"])
    lifting = paths["/api/v1/suppressions/{email}"]["delete"]["responses"]
    assert {"200", "401", "404", "422"} <= set(lifting)


# -- console --------------------------------------------------------------------------------


def test_the_console_shows_bounces_suppressions_and_the_unreachable_seller(
    console: TestClient, system: System, bounced: dict[str, str]
) -> None:
    page = console.get("/admin/bounces")
    assert page.status_code == 200
    assert "bounced" in page.text and bounced["email"] in page.text
    assert 'href="/admin/bounces"' in page.text  # in the menu
    [row] = [r for r in outbox(system) if r.template == "seller_new_sale"]
    assert f'href="/admin/outbox/{row.id}"' in page.text
    detail = console.get("/admin/bounces/1")
    assert detail.status_code == 200 and "Undelivered Mail Returned to Sender" in detail.text
    assert console.get("/admin/bounces/999").status_code == 404
    seller = console.get(f"/admin/sellers/{bounced['seller']}")
    assert "Unreachable by email" in seller.text
    listing = console.get("/admin/suppressions")
    assert bounced["email"] in listing.text
    assert console.get("/admin/outbox?status=bounced").text.count("seller_new_sale") >= 1

    page_url = "/admin/suppressions"
    lifted = post(console, "/admin/suppressions/lift", page_url, email=bounced["email"])
    assert lifted.status_code == 303
    assert suppressed(system) == []
    assert "Unreachable by email" not in console.get(f"/admin/sellers/{bounced['seller']}").text
    again = post(console, "/admin/suppressions/lift", "/admin/suppressions", email="x@y.example")
    assert again.status_code == 303
    assert "x@y.example" in console.get("/admin/suppressions").text  # the error flash


def test_lifting_needs_the_csrf_token(
    console: TestClient, system: System, bounced: dict[str, str]
) -> None:
    csrf_of(console, "/admin/suppressions")
    answer = console.post("/admin/suppressions/lift", data={"email": bounced["email"]})
    assert answer.status_code == 403
    assert suppressed(system) == [bounced["email"]]


def test_the_console_pages_need_a_sign_in(web: TestClient) -> None:
    for url in ("/admin/bounces", "/admin/bounces/1", "/admin/suppressions"):
        answer = web.get(url, follow_redirects=False)
        assert answer.status_code == 303 and "/admin/login" in answer.headers["location"]


# -- settings -------------------------------------------------------------------------------


def test_inbound_is_on_in_the_development_defaults_and_off_in_a_file_that_does_not_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    defaults = load(None, {"MAILFLOW_SERVER__DATA_DIR": str(tmp_path / "data")}).settings.inbound
    assert (defaults.enabled, defaults.port, defaults.domain) == (True, 2525, "mailflow.localhost")
    file = tmp_path / "mailflow.toml"
    file.write_text(f'[security]\nsecret_keys = ["{SECRET}"]\n')
    assert load(file, {}).settings.inbound.enabled is False
    file.write_text(f'[security]\nsecret_keys = ["{SECRET}"]\n[inbound]\nenabled = true\n')
    assert load(file, {}).settings.inbound.enabled is True
    assert load(file, {"MAILFLOW_INBOUND__ENABLED": "false"}).settings.inbound.enabled is False


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("domain", '"not a domain!"', "inbound.domain"),
        ("port", "0", "inbound.port"),
        ("max_message_bytes", "10", "inbound.max_message_bytes"),
        ("trusted_relays", '["10.0.0.0/33"]', "inbound.trusted_relays"),
        ("enabled", '"maybe"', "inbound.enabled"),
        ("unknown", "1", "inbound.unknown"),
    ],
)
def test_bad_inbound_settings_name_the_key(
    tmp_path: Path, key: str, value: str, words: str
) -> None:
    file = tmp_path / "mailflow.toml"
    file.write_text(f'[security]\nsecret_keys = ["{SECRET}"]\n[inbound]\n{key} = {value}\n')
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        load(file, {})
