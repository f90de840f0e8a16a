"""Signed action links through the app, on SQLite and PostgreSQL.

Every refused link must leave the sale as it was and queue no email; every page must be in the
right language and carry the no-referrer / no-store headers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from mailflow.bootstrap import System
from mailflow.links import SALE_ACTION, SELLER_LOGIN, InvalidLink, LinkSigner
from mailflow.store.models import OutboxMessage
from tests import factories
from tests.conftest import API_TOKEN, SECRET
from tests.support import MovableClock, RelayHandler, deliver, links_in, path_of

MAX_AGE_SECONDS = 336 * 3600
OLD_KEY = "rotation-old-" + "o" * 40
NEW_KEY = "rotation-new-" + "n" * 40
RETIRED_KEY = "rotation-retired-" + "r" * 40
LOGIN_URL = "http://mailflow.test/seller/login"
EN = {"Accept-Language": "en"}


# Helpers ------------------------------------------------------------------------------------


def _sale(api: TestClient, sale_id: int) -> dict[str, Any]:
    response = api.get(f"/api/v1/sales/{sale_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _status(api: TestClient, sale_id: int) -> str:
    return str(_sale(api, sale_id)["status"])


def _outbox_count(system: System) -> int:
    with system.db.read() as session:
        return session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one()


def _new_sale(api: TestClient, locale: str = "fr") -> tuple[dict[str, Any], int]:
    seller = factories.seller(api, locale=locale)
    sale_id = factories.order(api, seller["id"])["sales"][0]["id"]
    return seller, sale_id


def _assert_unchanged(api: TestClient, system: System, sale_id: int, outbox_before: int) -> None:
    sale = _sale(api, sale_id)
    assert sale["status"] == "pending"
    assert sale["reason"] is None
    assert [e["action"] for e in sale["events"]] == ["create"]
    assert sale["payment"]["state"] != "released"
    assert _outbox_count(system) == outbox_before


def _assert_page_headers(response: Any) -> None:
    assert response.headers["Referrer-Policy"] == "no-referrer", response.status_code
    assert response.headers["Cache-Control"] == "no-store", response.status_code
    assert response.headers["Content-Type"].startswith("text/html")


def _change_char(token: str, index: int) -> str:
    replacement = "A" if token[index] != "A" else "B"
    return token[:index] + replacement + token[index + 1 :]


def _tampered(kind: str, token: str) -> str:
    payload, timestamp, signature = token.split(".")
    if kind == "payload-char":
        return _change_char(token, len(payload) // 2)
    if kind == "signature-char":
        # A middle character: the last one's low bits are base64 padding.
        return _change_char(token, len(payload) + len(timestamp) + 2 + len(signature) // 2)
    if kind == "truncated":
        return token[:-4]
    if kind == "signature-dropped":
        return f"{payload}.{timestamp}"
    if kind == "garbage":
        return "not-a-real-token"
    if kind == "garbage-dots":
        return "a.b.c"
    raise AssertionError(kind)


def _clocked_serializer(salt: str, clock: MovableClock) -> URLSafeTimedSerializer:
    """mailflow's token format built independently, to forge tokens with the test key."""

    class Clocked(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock().timestamp())

    return URLSafeTimedSerializer([SECRET], salt=salt, signer=Clocked)


@contextmanager
def _clients(system: System) -> Iterator[tuple[TestClient, TestClient]]:
    """An authenticated API client and a bare browser client for ``system``."""
    from mailflow.web.app import create_app

    app = create_app(system)
    with (
        TestClient(app, base_url="http://mailflow.test") as api,
        TestClient(app, base_url="http://mailflow.test") as web,
    ):
        api.headers["Authorization"] = f"Bearer {API_TOKEN}"
        yield api, web


def _with_keys(make_system: Callable[..., System], db_url: str, *keys: str) -> System:
    return make_system(db_url, security={"secret_keys": list(keys)})


def _seller_links(handler: RelayHandler, seller_email: str) -> list[str]:
    for message in reversed(handler.messages()):
        if message["To"].addresses[0].addr_spec == seller_email:
            return links_in(message)
    raise AssertionError(f"no email to {seller_email}")


# A valid link -------------------------------------------------------------------------------


class TestValidLink:
    def test_refuse_link_from_the_email_refuses_on_post(
        self, api: TestClient, web: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller, sale_id = _new_sale(api)
        assert deliver(system) == 1
        _, refuse, _ = _seller_links(relay[0], seller["email"])
        before = _outbox_count(system)

        done = web.post(path_of(refuse))
        assert done.status_code == 200
        assert "La vente a été refusée. L&#39;acheteur en est informé." in done.text
        sale = _sale(api, sale_id)
        assert sale["status"] == "refused"
        assert sale["events"][-1]["channel"] == "email-link"
        assert _outbox_count(system) == before + 1
        assert deliver(system) == 1
        assert relay[0].messages()[-1]["X-Mailflow-Template"] == "buyer_sale_refused"

    def test_accept_link_from_the_email_accepts_on_post(
        self, api: TestClient, web: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller, sale_id = _new_sale(api)
        deliver(system)
        accept, _, _ = _seller_links(relay[0], seller["email"])

        done = web.post(path_of(accept))
        assert done.status_code == 200
        assert "La vente est acceptée. L&#39;acheteur en est informé." in done.text
        assert _status(api, sale_id) == "accepted"
        assert deliver(system) == 1
        assert relay[0].messages()[-1]["X-Mailflow-Template"] == "buyer_sale_accepted"


# Tampered, truncated, garbage ---------------------------------------------------------------

TAMPERINGS = [
    "payload-char",
    "signature-char",
    "truncated",
    "signature-dropped",
    "garbage",
    "garbage-dots",
]


class TestInvalidLink:
    @pytest.mark.parametrize("kind", TAMPERINGS)
    def test_bad_token_is_400_in_french_by_default_and_changes_nothing(
        self, api: TestClient, web: TestClient, system: System, kind: str
    ) -> None:
        _, sale_id = _new_sale(api)
        token = _tampered(kind, system.signer.sale_token(sale_id, "refuse"))
        with pytest.raises(InvalidLink):
            system.signer.verify_sale_token(token)
        before = _outbox_count(system)

        for method in (web.get, web.post):
            page = method(f"/s/{token}")
            assert page.status_code == 400
            assert "Lien invalide" in page.text
            assert "Utilisez le lien exact reçu par e-mail." in page.text
            assert '<html lang="fr">' in page.text
            _assert_page_headers(page)
        _assert_unchanged(api, system, sale_id, before)

    @pytest.mark.parametrize("kind", TAMPERINGS)
    def test_bad_token_is_400_in_the_browsers_language(
        self, api: TestClient, web: TestClient, system: System, kind: str
    ) -> None:
        _, sale_id = _new_sale(api)
        token = _tampered(kind, system.signer.sale_token(sale_id, "accept"))
        before = _outbox_count(system)

        for method in (web.get, web.post):
            page = method(f"/s/{token}", headers=EN)
            assert page.status_code == 400
            assert "Invalid link" in page.text
            assert "Lien invalide" not in page.text
            assert '<html lang="en">' in page.text
        regional = web.post(f"/s/{token}", headers={"Accept-Language": "en-GB,en;q=0.8"})
        assert regional.status_code == 400
        assert "Invalid link" in regional.text
        _assert_unchanged(api, system, sale_id, before)

    def test_bad_token_sends_no_email(
        self, api: TestClient, web: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        _, sale_id = _new_sale(api)
        assert deliver(system) == 1
        token = system.signer.sale_token(sale_id, "refuse")
        for kind in TAMPERINGS:
            assert web.post(f"/s/{_tampered(kind, token)}").status_code == 400
        assert deliver(system) == 0
        assert len(relay[0].messages()) == 1
        assert _status(api, sale_id) == "pending"


# Expiry -------------------------------------------------------------------------------------


class TestExpiry:
    def test_expired_link_is_410_with_a_login_link_and_changes_nothing(
        self, api: TestClient, web: TestClient, system: System, clock: MovableClock
    ) -> None:
        assert system.settings.security.link_max_age_hours == 336
        _, sale_id = _new_sale(api)
        token = system.signer.sale_token(sale_id, "refuse")
        before = _outbox_count(system)
        clock.advance(seconds=MAX_AGE_SECONDS + 1)

        for method in (web.get, web.post):
            page = method(f"/s/{token}")
            assert page.status_code == 410
            assert "Lien expiré" in page.text
            assert f'href="{LOGIN_URL}"' in page.text
            assert "Recevoir un lien de connexion" in page.text
            _assert_page_headers(page)
        # The seller's language wins over the browser's: the signature names the sale.
        browser_en = web.get(f"/s/{token}", headers=EN)
        assert browser_en.status_code == 410
        assert "Lien expiré" in browser_en.text
        assert f'href="{LOGIN_URL}"' in browser_en.text
        _assert_unchanged(api, system, sale_id, before)

    def test_expired_link_sends_no_email(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        clock: MovableClock,
        relay: tuple[RelayHandler, int],
    ) -> None:
        seller, sale_id = _new_sale(api)
        assert deliver(system) == 1
        accept, refuse, _ = _seller_links(relay[0], seller["email"])
        clock.advance(days=30)
        assert web.post(path_of(refuse)).status_code == 410
        assert web.post(path_of(accept)).status_code == 410
        assert deliver(system) == 0
        assert len(relay[0].messages()) == 1
        assert _status(api, sale_id) == "pending"

    def test_link_just_before_the_limit_still_works(
        self, db_url: str, make_system: Callable[..., System], clock: MovableClock
    ) -> None:
        # A deadline past the links' life, so that the sale is still pending at the end.
        deadline = {"acceptance_deadline_hours": MAX_AGE_SECONDS / 3600 + 1}
        system = make_system(db_url, policy=deadline)
        with _clients(system) as (api, web):
            _, sale_id = _new_sale(api)
            token = system.signer.sale_token(sale_id, "refuse")
            clock.advance(seconds=MAX_AGE_SECONDS - 1)

            page = web.get(f"/s/{token}")
            assert page.status_code == 200
            assert "Refuser cette vente ?" in page.text
            done = web.post(f"/s/{token}")
            assert done.status_code == 200
            assert "La vente a été refusée" in done.text
            assert _status(api, sale_id) == "refused"

    def test_max_age_follows_the_setting(
        self, db_url: str, make_system: Callable[..., System], clock: MovableClock
    ) -> None:
        system = make_system(db_url, security={"secret_keys": [SECRET], "link_max_age_hours": 2})
        with _clients(system) as (api, web):
            _, sale_id = _new_sale(api)
            token = system.signer.sale_token(sale_id, "refuse")
            clock.advance(hours=2)
            assert web.get(f"/s/{token}").status_code == 200
            clock.advance(seconds=1)
            assert web.post(f"/s/{token}").status_code == 410
            assert _status(api, sale_id) == "pending"

    def test_expired_page_is_in_the_sellers_language(
        self, api: TestClient, web: TestClient, system: System, clock: MovableClock
    ) -> None:
        # The signature is genuine, so the sale (and its seller's locale) is known; the module
        # promises every answer in the seller's language. Only 400/404 cannot know the seller.
        _, sale_id = _new_sale(api, locale="en")
        token = system.signer.sale_token(sale_id, "refuse")
        clock.advance(seconds=MAX_AGE_SECONDS + 1)

        page = web.get(f"/s/{token}")
        assert page.status_code == 410
        assert "Link expired" in page.text
        assert "Lien expiré" not in page.text


# Bound to one action and one sale -----------------------------------------------------------


class TestBoundToActionAndSale:
    def test_accept_token_cannot_refuse(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        _, sale_id = _new_sale(api)
        accept = system.signer.sale_token(sale_id, "accept")

        # Even with a refusal reason in the form, an accept token only accepts.
        first = web.post(f"/s/{accept}", data={"reason": "cannot_ship"})
        assert first.status_code == 200
        assert "La vente est acceptée" in first.text
        again = web.post(f"/s/{accept}")
        assert again.status_code == 200
        assert "déjà acceptée" in again.text
        assert web.get(f"/s/{accept}").status_code == 200

        sale = _sale(api, sale_id)
        assert sale["status"] == "accepted"
        assert sale["reason"] is None
        assert [e["action"] for e in sale["events"]] == ["create", "accept"]
        assert "refuse" not in {e["action"] for e in sale["events"]}

    def test_refuse_token_cannot_accept(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        _, sale_id = _new_sale(api)
        refuse = system.signer.sale_token(sale_id, "refuse")
        assert web.post(f"/s/{refuse}").status_code == 200
        assert web.post(f"/s/{refuse}").status_code == 200
        sale = _sale(api, sale_id)
        assert sale["status"] == "refused"
        assert [e["action"] for e in sale["events"]] == ["create", "refuse"]

    def test_token_for_sale_a_never_changes_sale_b(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        seller, sale_a = _new_sale(api)
        sale_b = factories.order(api, seller["id"])["sales"][0]["id"]
        assert sale_a != sale_b
        token_a = system.signer.sale_token(sale_a, "refuse")
        before = _outbox_count(system)

        assert web.get(f"/s/{token_a}").status_code == 200
        done = web.post(f"/s/{token_a}")
        assert done.status_code == 200
        assert f"({_sale(api, sale_a)['sku']})" in done.text
        assert _status(api, sale_a) == "refused"
        # Only sale A's buyer notice was queued; sale B is untouched.
        assert _outbox_count(system) == before + 1
        sale = _sale(api, sale_b)
        assert sale["status"] == "pending"
        assert [e["action"] for e in sale["events"]] == ["create"]

    def test_payload_swapped_between_two_valid_tokens_is_400(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        seller, sale_a = _new_sale(api)
        sale_b = factories.order(api, seller["id"])["sales"][0]["id"]
        token_a = system.signer.sale_token(sale_a, "refuse")
        token_b = system.signer.sale_token(sale_b, "refuse")
        payload_b = token_b.split(".")[0]
        _, ts_a, sig_a = token_a.split(".")
        forged = f"{payload_b}.{ts_a}.{sig_a}"
        before = _outbox_count(system)

        for method in (web.get, web.post):
            page = method(f"/s/{forged}")
            assert page.status_code == 400
            assert "Lien invalide" in page.text
        _assert_unchanged(api, system, sale_a, before)
        _assert_unchanged(api, system, sale_b, before)

    def test_action_swapped_between_two_valid_tokens_is_400(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        _, sale_id = _new_sale(api)
        accept = system.signer.sale_token(sale_id, "accept")
        refuse = system.signer.sale_token(sale_id, "refuse")
        _, ts, sig = accept.split(".")
        forged = f"{refuse.split('.')[0]}.{ts}.{sig}"
        before = _outbox_count(system)

        assert web.post(f"/s/{forged}").status_code == 400
        _assert_unchanged(api, system, sale_id, before)


# Key rotation -------------------------------------------------------------------------------


class TestKeyRotation:
    def test_link_signed_with_a_retired_key_is_400(
        self,
        db_url: str,
        make_system: Callable[..., System],
        relay: tuple[RelayHandler, int],
    ) -> None:
        before_rotation = _with_keys(make_system, db_url, RETIRED_KEY)
        with _clients(before_rotation) as (api, _):
            seller, sale_id = _new_sale(api)
            assert deliver(before_rotation) == 1
        _, refuse, _ = _seller_links(relay[0], seller["email"])

        after_rotation = _with_keys(make_system, db_url, OLD_KEY, NEW_KEY)
        with _clients(after_rotation) as (api, web):
            before = _outbox_count(after_rotation)
            for method in (web.get, web.post):
                page = method(path_of(refuse))
                assert page.status_code == 400
                assert "Lien invalide" in page.text
            _assert_unchanged(api, after_rotation, sale_id, before)

    def test_link_signed_with_the_previous_key_still_listed_works(
        self,
        db_url: str,
        make_system: Callable[..., System],
        relay: tuple[RelayHandler, int],
    ) -> None:
        before_rotation = _with_keys(make_system, db_url, OLD_KEY)
        with _clients(before_rotation) as (api, _):
            seller, sale_id = _new_sale(api)
            assert deliver(before_rotation) == 1
        _, refuse, _ = _seller_links(relay[0], seller["email"])

        rotated = _with_keys(make_system, db_url, OLD_KEY, NEW_KEY)
        with _clients(rotated) as (api, web):
            assert web.get(path_of(refuse)).status_code == 200
            done = web.post(path_of(refuse))
            assert done.status_code == 200
            assert "La vente a été refusée" in done.text
            assert _status(api, sale_id) == "refused"

    def test_new_links_are_signed_with_the_last_key(
        self,
        db_url: str,
        make_system: Callable[..., System],
        relay: tuple[RelayHandler, int],
        clock: MovableClock,
    ) -> None:
        rotated = _with_keys(make_system, db_url, OLD_KEY, NEW_KEY)
        with _clients(rotated) as (api, _):
            seller, sale_id = _new_sale(api)
            assert deliver(rotated) == 1
        links = _seller_links(relay[0], seller["email"])
        assert len(links) == 3
        only_new = LinkSigner([NEW_KEY], MAX_AGE_SECONDS, clock=clock)
        only_old = LinkSigner([OLD_KEY], MAX_AGE_SECONDS, clock=clock)
        for link, action in zip(links, ("accept", "refuse", "view"), strict=True):
            token = path_of(link).removeprefix("/s/")
            verified = only_new.verify_sale_token(token)
            assert (verified.sale_id, verified.action) == (sale_id, action)
            with pytest.raises(InvalidLink):
                only_old.verify_sale_token(token)
        # Tokens made on a page (the view's buttons) use the last key too.
        token = rotated.signer.sale_token(sale_id, "accept")
        assert only_new.verify_sale_token(token).sale_id == sale_id

        # Once the old key is dropped, the links still work.
        new_only_system = _with_keys(make_system, db_url, NEW_KEY)
        with _clients(new_only_system) as (api, web):
            accept = path_of(links[0])
            assert web.post(accept).status_code == 200
            assert _status(api, sale_id) == "accepted"


# Purposes -----------------------------------------------------------------------------------


class TestLoginTokenIsNotASaleLink:
    def test_seller_login_token_at_sale_link_is_400(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        seller, sale_id = _new_sale(api)
        token = system.signer.login_token(seller["id"], "nonce-123")
        before = _outbox_count(system)
        for method in (web.get, web.post):
            page = method(f"/s/{token}")
            assert page.status_code == 400
            assert "Lien invalide" in page.text
        _assert_unchanged(api, system, sale_id, before)

    def test_sale_shaped_payload_signed_for_login_is_400(
        self, api: TestClient, web: TestClient, system: System, clock: MovableClock
    ) -> None:
        _, sale_id = _new_sale(api)
        payload = {"s": sale_id, "a": "refuse"}
        # Control: the same forging with the sale salt is a working link...
        genuine = _clocked_serializer(SALE_ACTION, clock).dumps(payload)
        assert system.signer.verify_sale_token(genuine).sale_id == sale_id
        # ...so only the login salt makes this one fail.
        forged = _clocked_serializer(SELLER_LOGIN, clock).dumps(payload)
        before = _outbox_count(system)

        page = web.post(f"/s/{forged}")
        assert page.status_code == 400
        assert "Lien invalide" in page.text
        _assert_unchanged(api, system, sale_id, before)


# GET is safe, POST acts, headers on every answer --------------------------------------------


class TestGetIsSafe:
    def test_get_five_times_changes_nothing(
        self, api: TestClient, web: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller, sale_id = _new_sale(api)
        assert deliver(system) == 1
        accept, refuse, view = _seller_links(relay[0], seller["email"])
        before = _outbox_count(system)

        for _ in range(5):
            for link in (accept, refuse, view):
                page = web.get(path_of(link))
                assert page.status_code == 200
        _assert_unchanged(api, system, sale_id, before)
        assert deliver(system) == 0
        assert len(relay[0].messages()) == 1

        # The confirmation page posts back to the same link; POST acts.
        confirm = web.get(path_of(refuse))
        assert '<form method="post">' in confirm.text
        assert web.post(path_of(refuse)).status_code == 200
        assert _status(api, sale_id) == "refused"

    def test_get_on_a_decided_sale_changes_nothing(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        _, sale_id = _new_sale(api)
        accept = system.signer.sale_token(sale_id, "accept")
        refuse = system.signer.sale_token(sale_id, "refuse")
        assert web.post(f"/s/{accept}").status_code == 200
        before = _outbox_count(system)
        for _ in range(5):
            assert web.get(f"/s/{refuse}").status_code == 409
            assert web.get(f"/s/{accept}").status_code == 200
        sale = _sale(api, sale_id)
        assert sale["status"] == "accepted"
        assert [e["action"] for e in sale["events"]] == ["create", "accept"]
        assert _outbox_count(system) == before


class TestPageHeaders:
    def test_every_answer_has_no_referrer_and_no_store(
        self, api: TestClient, web: TestClient, system: System, clock: MovableClock
    ) -> None:
        _, sale_id = _new_sale(api)
        accept = system.signer.sale_token(sale_id, "accept")
        refuse = system.signer.sale_token(sale_id, "refuse")
        view = system.signer.sale_token(sale_id, "view")
        unknown = system.signer.sale_token(999_999, "refuse")

        answers = [
            (200, web.get(f"/s/{view}")),
            (200, web.get(f"/s/{accept}")),
            (422, web.post(f"/s/{refuse}", data={"reason": "not-a-reason"})),
            (200, web.post(f"/s/{accept}")),
            (200, web.post(f"/s/{accept}")),
            (409, web.get(f"/s/{refuse}")),
            (409, web.post(f"/s/{refuse}")),
            (400, web.get(f"/s/{refuse[:-3]}")),
            (400, web.post("/s/garbage")),
            (404, web.get(f"/s/{unknown}")),
            (404, web.post(f"/s/{unknown}")),
        ]
        clock.advance(seconds=MAX_AGE_SECONDS + 1)
        answers += [(410, web.get(f"/s/{accept}")), (410, web.post(f"/s/{refuse}"))]

        for expected, response in answers:
            assert response.status_code == expected, (expected, response.text)
            _assert_page_headers(response)
        assert {code for code, _ in answers} == {200, 400, 404, 409, 410, 422}


# The refusal reason -------------------------------------------------------------------------


class TestRefuseReason:
    def test_confirmation_form_offers_every_reason_out_of_stock_first(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        _, sale_id = _new_sale(api)
        page = web.get(f"/s/{system.signer.sale_token(sale_id, 'refuse')}")
        assert page.status_code == 200
        assert '<select id="reason" name="reason">' in page.text
        assert '<option value="out_of_stock" selected>article en rupture de stock' in page.text
        for value, label in (
            ("cannot_ship", "expédition impossible"),
            ("pricing_error", "erreur de prix"),
            ("other", "autre raison"),
        ):
            assert f'<option value="{value}">{label}</option>' in page.text
        accept_page = web.get(f"/s/{system.signer.sale_token(sale_id, 'accept')}")
        assert 'name="reason"' not in accept_page.text

    def test_reason_from_the_form_is_stored(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        seller, sale_id = _new_sale(api)
        token = system.signer.sale_token(sale_id, "refuse")
        done = web.post(f"/s/{token}", data={"reason": "cannot_ship"})
        assert done.status_code == 200
        sale = _sale(api, sale_id)
        assert sale["status"] == "refused"
        assert sale["reason"] == "cannot_ship"
        assert sale["events"][-1]["reason"] == "cannot_ship"

        # Not a stock problem: the listing stays on sale.
        again = factories.order_body(seller["id"])
        again["items"][0]["sku"] = sale["sku"]
        assert api.post("/api/v1/orders", json=again).status_code == 201

    def test_reason_from_a_multipart_form_is_stored(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        _, sale_id = _new_sale(api)
        token = system.signer.sale_token(sale_id, "refuse")
        done = web.post(f"/s/{token}", files={"reason": (None, "pricing_error")})
        assert done.status_code == 200
        assert _sale(api, sale_id)["reason"] == "pricing_error"

    @pytest.mark.parametrize("reason", ["bogus", "OUT_OF_STOCK", "out_of_stock ", "ship"])
    def test_unknown_reason_is_rejected_and_changes_nothing(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
        reason: str,
    ) -> None:
        _, sale_id = _new_sale(api)
        assert deliver(system) == 1
        token = system.signer.sale_token(sale_id, "refuse")
        before = _outbox_count(system)

        page = web.post(f"/s/{token}", data={"reason": reason})
        assert 400 <= page.status_code < 500
        _assert_page_headers(page)
        _assert_unchanged(api, system, sale_id, before)
        assert deliver(system) == 0

    @pytest.mark.parametrize("form", [None, {"reason": "out_of_stock"}, {"reason": ""}])
    def test_out_of_stock_refusal_takes_the_listing_off_sale(
        self, api: TestClient, web: TestClient, system: System, form: dict[str, str] | None
    ) -> None:
        seller, sale_id = _new_sale(api)
        token = system.signer.sale_token(sale_id, "refuse")
        assert web.post(f"/s/{token}", data=form).status_code == 200
        sale = _sale(api, sale_id)
        assert sale["reason"] == "out_of_stock"

        same_listing = factories.order_body(seller["id"])
        same_listing["items"][0]["sku"] = sale["sku"]
        before = _outbox_count(system)
        refused = api.post("/api/v1/orders", json=same_listing)
        assert refused.status_code == 409
        assert refused.json()["error"] == "listing_unavailable"
        assert _outbox_count(system) == before

        # Only that listing: another SKU of the same seller still sells.
        assert factories.order(api, seller["id"])["sales"][0]["status"] == "pending"


# The seller's language ----------------------------------------------------------------------


class TestSellersLanguage:
    def test_english_seller_gets_english_pages(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        _, sale_id = _new_sale(api, locale="en")
        accept = system.signer.sale_token(sale_id, "accept")
        refuse = system.signer.sale_token(sale_id, "refuse")
        view = system.signer.sale_token(sale_id, "view")

        # The seller's locale wins over the browser's.
        confirm = web.get(f"/s/{refuse}", headers={"Accept-Language": "fr"})
        assert confirm.status_code == 200
        assert '<html lang="en">' in confirm.text
        assert "Refuse this sale?" in confirm.text
        assert "Confirm: the article is no longer available" in confirm.text
        assert "Refuser cette vente" not in confirm.text
        assert "Accept this sale?" in web.get(f"/s/{accept}").text
        assert "Click here if the article is no longer available" in web.get(f"/s/{view}").text

        done = web.post(f"/s/{refuse}")
        assert "The sale is refused. The buyer has been told." in done.text
        already = web.post(f"/s/{refuse}", headers={"Accept-Language": "fr"})
        assert "This sale has been refused since" in already.text
        conflict = web.post(f"/s/{accept}")
        assert conflict.status_code == 409
        assert "Not possible: this sale is refused." in conflict.text

    def test_french_seller_gets_french_pages(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        _, sale_id = _new_sale(api, locale="fr")
        accept = system.signer.sale_token(sale_id, "accept")
        refuse = system.signer.sale_token(sale_id, "refuse")

        confirm = web.get(f"/s/{accept}", headers=EN)
        assert confirm.status_code == 200
        assert '<html lang="fr">' in confirm.text
        assert "Accepter cette vente ?" in confirm.text
        assert "Accept this sale?" not in confirm.text
        assert "Refuser cette vente ?" in web.get(f"/s/{refuse}", headers=EN).text

        done = web.post(f"/s/{accept}", headers=EN)
        assert "La vente est acceptée. L&#39;acheteur en est informé." in done.text
        conflict = web.post(f"/s/{refuse}", headers=EN)
        assert conflict.status_code == 409
        assert "Impossible : cette vente est acceptée." in conflict.text
        assert "Annuler la vente de cet article" in conflict.text
