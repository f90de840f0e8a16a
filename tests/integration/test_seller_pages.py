"""The seller pages (``/seller/…``) through the ASGI app, on SQLite and PostgreSQL.

Login by emailed link (scanner-safe, once, 15 minutes, the same answer for any address, rate
limited), "Toutes les commandes" (own sales only, filters, search, pages), a sale (accept,
refuse, cancel with a previewed message), the rate over time. Every refused request must
leave the sale as it was and queue no email.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailflow.bootstrap import System
from mailflow.services import accounts, portal
from mailflow.store.models import LoginLink, OutboxMessage
from tests import factories
from tests.support import MovableClock, RelayHandler, deliver, text_of

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LOGIN_PATH = re.compile(r"https?://[^\s/]+(/seller/login/[A-Za-z0-9_.\-]+)")
FLASH = re.compile(r'class="flash flash-(\w+)"[^>]*>([^<]*)<')


# Helpers ------------------------------------------------------------------------------------


def _csrf(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def _flashes(html: str) -> list[tuple[str, str]]:
    return [(kind, unescape(text)) for kind, text in FLASH.findall(html)]


def _outbox(system: System, template: str | None = None) -> int:
    query = select(func.count()).select_from(OutboxMessage)
    if template is not None:
        query = query.where(OutboxMessage.template == template)
    with system.db.read() as session:
        return int(session.execute(query).scalar_one())


def _queued(system: System, template: str, to: str) -> list[EmailMessage]:
    with system.db.read() as session:
        bodies = session.execute(
            select(OutboxMessage.body)
            .where(OutboxMessage.template == template, OutboxMessage.recipient == to)
            .order_by(OutboxMessage.id)
        ).scalars()
        return [message_from_bytes(b, policy=policy.default) for b in bodies]  # type: ignore[misc]


def _login_path(system: System, email: str) -> str:
    """The path of the newest login link queued for ``email``."""
    messages = _queued(system, "seller_login_link", email)
    assert messages, f"no login link queued for {email}"
    match = LOGIN_PATH.search(text_of(messages[-1]))
    assert match
    return match.group(1)


def _ask_link(web: TestClient, email: str) -> Any:
    token = _csrf(web.get("/seller/login").text)
    return web.post("/seller/login", data={"email": email, "csrf_token": token})


def _login(web: TestClient, system: System, email: str) -> str:
    """Log ``web`` in as the seller with ``email``, through the emailed link; its CSRF token."""
    assert _ask_link(web, email).status_code == 200
    path = _login_path(system, email)
    page = web.get(path)
    assert page.status_code == 200, page.text
    done = web.post(path, data={"csrf_token": _csrf(page.text)}, follow_redirects=False)
    assert done.status_code == 303, done.text
    return _csrf(web.get("/seller/sales").text)


def _sale(api: TestClient, sale_id: int) -> dict[str, Any]:
    response = api.get(f"/api/v1/sales/{sale_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _new_sale(api: TestClient, seller_id: int, **item: Any) -> int:
    body = factories.order_body(seller_id)
    body["items"][0].update(item)
    response = api.post("/api/v1/orders", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["sales"][0]["id"])


def _accepted_sale(api: TestClient, seller_id: int, **item: Any) -> int:
    sale_id = _new_sale(api, seller_id, **item)
    assert api.post(f"/api/v1/sales/{sale_id}/accept").status_code == 200
    return sale_id


def _assert_page(response: Any) -> None:
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def _sale_ids(html: str) -> list[int]:
    """The sales a list page shows, in order (the number column's links)."""
    return [int(n) for n in re.findall(r'<a href="/seller/sales/(\d+)">n° \1</a>', html)]


def _text(html: str) -> str:
    """The page's text with tags dropped and spaces (incl. no-break ones) collapsed."""
    text = unescape(re.sub(r"<[^>]+>", " ", html))
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


@pytest.fixture
def seller(api: TestClient) -> dict[str, Any]:
    return factories.seller(api)


# Login --------------------------------------------------------------------------------------


class TestLoginPage:
    def test_form_has_a_labelled_email_field_and_a_csrf_token(self, web: TestClient) -> None:
        page = web.get("/seller/login")
        assert page.status_code == 200
        _assert_page(page)
        assert '<label for="email">Adresse e-mail</label>' in page.text
        assert 'id="email" name="email"' in page.text
        assert _csrf(page.text)
        assert '<html lang="fr">' in page.text

    def test_in_the_browsers_language_before_login(self, web: TestClient) -> None:
        page = web.get("/seller/login", headers={"Accept-Language": "en-GB,en;q=0.8"})
        assert '<html lang="en">' in page.text
        assert "Send me a sign-in link" in page.text

    def test_pages_of_the_portal_redirect_to_login(self, web: TestClient) -> None:
        for path in ("/seller/sales", "/seller/sales/1", "/seller/stats", "/seller"):
            response = web.get(path, follow_redirects=False)
            assert response.status_code == 303, path
            assert response.headers["location"] in ("/seller/login", "/seller/sales"), path


class TestAskForALink:
    def test_known_and_unknown_addresses_get_the_same_answer(
        self, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        known = _ask_link(web, seller["email"])
        unknown = _ask_link(web, "nobody@shop.example")
        assert known.status_code == unknown.status_code == 200
        assert known.text.replace(seller["email"], "X") == unknown.text.replace(
            "nobody@shop.example", "X"
        )
        assert _outbox(system, "seller_login_link") == 1
        assert len(_queued(system, "seller_login_link", seller["email"])) == 1

    def test_the_link_comes_by_email_in_the_sellers_language(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
    ) -> None:
        english = factories.seller(api, locale="en")
        _ask_link(web, f"  {english['email']} ")
        assert deliver(system) == 1
        message = relay[0].messages()[-1]
        assert "sign" in message["Subject"].lower()
        assert message["X-Mailflow-Template"] == "seller_login_link"
        assert message["To"].addresses[0].addr_spec == english["email"]
        assert LOGIN_PATH.search(text_of(message))

    @pytest.mark.parametrize("email", ["", "not-an-address", "a@b@c.example", "x" * 400])
    def test_a_malformed_address_is_422_and_sends_nothing(
        self, web: TestClient, system: System, email: str
    ) -> None:
        page = _ask_link(web, email)
        assert page.status_code == 422
        assert 'aria-invalid="true"' in page.text
        assert _outbox(system) == 0

    def test_without_csrf_token_is_403_and_sends_nothing(
        self, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        web.get("/seller/login")
        page = web.post("/seller/login", data={"email": seller["email"]})
        assert page.status_code == 403
        assert "Action refusée" in page.text
        page = web.post("/seller/login", data={"email": seller["email"], "csrf_token": "forged"})
        assert page.status_code == 403
        assert _outbox(system) == 0


class TestRateLimit:
    def test_five_requests_per_address_then_429(
        self, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        for _ in range(5):
            assert _ask_link(web, seller["email"]).status_code == 200
        refused = _ask_link(web, seller["email"].upper())
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) == 900
        assert "Trop de demandes" in refused.text
        assert _outbox(system, "seller_login_link") == 5
        # An unknown address is limited exactly the same way (no difference to observe).
        for _ in range(5):
            assert _ask_link(web, "nobody@shop.example").status_code == 200
        assert _ask_link(web, "nobody@shop.example").status_code == 429

    def test_twenty_requests_per_ip_then_429_other_ips_unaffected(
        self, web: TestClient, system: System
    ) -> None:
        for n in range(20):
            assert _ask_link(web, f"someone{n}@shop.example").status_code == 200
        assert _ask_link(web, "someone-else@shop.example").status_code == 429
        other = TestClient(web.app, base_url="http://mailflow.test", client=("192.0.2.7", 5000))
        with other:
            assert _ask_link(other, "someone-else@shop.example").status_code == 200


class TestLoginLink:
    def test_get_shows_a_button_and_does_not_log_in_nor_spend_the_link(
        self, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        _ask_link(web, seller["email"])
        path = _login_path(system, seller["email"])
        for _ in range(3):  # a mail scanner, a preview, the seller
            page = web.get(path)
            assert page.status_code == 200
            _assert_page(page)
            assert seller["name"] in page.text
            assert '<button type="submit" class="button primary">Me connecter</button>' in (
                page.text
            )
        assert web.get("/seller/sales", follow_redirects=False).status_code == 303
        with system.db.read() as session:
            assert session.execute(select(LoginLink.used_at)).scalar_one() is None

    def test_post_logs_in_and_opens_the_order_list(
        self, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        _ask_link(web, seller["email"])
        path = _login_path(system, seller["email"])
        page = web.get(path)
        done = web.post(path, data={"csrf_token": _csrf(page.text)}, follow_redirects=False)
        assert done.status_code == 303
        assert done.headers["location"] == "/seller/sales"
        cookie = done.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        listing = web.get("/seller/sales")
        assert listing.status_code == 200
        assert f"Bonjour {seller['name']}, vous êtes connecté(e)." in _text(listing.text)

    def test_a_link_works_once(
        self, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        _ask_link(web, seller["email"])
        path = _login_path(system, seller["email"])
        token = _csrf(web.get(path).text)
        assert web.post(path, data={"csrf_token": token}, follow_redirects=False).status_code == 303
        web.post("/seller/logout", data={"csrf_token": token})
        assert web.get("/seller/sales", follow_redirects=False).status_code == 303

        again = web.post(path, data={"csrf_token": token}, follow_redirects=False)
        assert again.status_code == 410
        assert "déjà utilisé" in again.text
        assert web.get("/seller/sales", follow_redirects=False).status_code == 303
        shown = web.get(path)
        assert shown.status_code == 410
        assert "Me connecter" not in shown.text

    def test_post_without_csrf_token_is_403_and_the_link_is_not_spent(
        self, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        _ask_link(web, seller["email"])
        path = _login_path(system, seller["email"])
        assert web.post(path).status_code == 403
        assert web.get("/seller/sales", follow_redirects=False).status_code == 303
        with system.db.read() as session:
            assert session.execute(select(LoginLink.used_at)).scalar_one() is None

    def test_after_fifteen_minutes_the_link_is_expired(
        self, web: TestClient, system: System, clock: MovableClock, seller: dict[str, Any]
    ) -> None:
        _ask_link(web, seller["email"])
        path = _login_path(system, seller["email"])
        token = _csrf(web.get(path).text)
        clock.advance(minutes=15, seconds=1)
        page = web.get(path)
        assert page.status_code == 410
        assert "Lien de connexion expiré" in page.text
        assert web.post(path, data={"csrf_token": token}).status_code == 410
        assert web.get("/seller/sales", follow_redirects=False).status_code == 303

    @pytest.mark.parametrize("mangle", ["char", "truncate", "garbage", "sale-link"])
    def test_a_tampered_link_is_400(
        self, web: TestClient, system: System, seller: dict[str, Any], mangle: str
    ) -> None:
        _ask_link(web, seller["email"])
        token = _login_path(system, seller["email"]).rsplit("/", 1)[1]
        bad = {
            "char": token[:10] + ("A" if token[10] != "A" else "B") + token[11:],
            "truncate": token[:-5],
            "garbage": "not.a.token",
            "sale-link": system.signer.sale_token(1, "accept"),
        }[mangle]
        page = web.get(f"/seller/login/{bad}")
        assert page.status_code == 400
        assert "Lien de connexion invalide" in page.text
        csrf = _csrf(web.get("/seller/login").text)
        assert web.post(f"/seller/login/{bad}", data={"csrf_token": csrf}).status_code == 400
        assert web.get("/seller/sales", follow_redirects=False).status_code == 303

    def test_after_login_the_page_asked_for_opens(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        sale_id = _new_sale(api, seller["id"])
        assert web.get(f"/seller/sales/{sale_id}", follow_redirects=False).status_code == 303
        _ask_link(web, seller["email"])
        path = _login_path(system, seller["email"])
        done = web.post(
            path, data={"csrf_token": _csrf(web.get(path).text)}, follow_redirects=False
        )
        assert done.headers["location"] == f"/seller/sales/{sale_id}"

    def test_pages_are_in_the_sellers_language(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        english = factories.seller(api, locale="en")
        _login(web, system, english["email"])
        page = web.get("/seller/sales")
        assert '<html lang="en">' in page.text
        assert "All orders" in page.text
        assert web.post("/seller/logout").status_code == 403  # the 403 page too
        assert "Action refused" in web.post("/seller/logout").text


class TestLogout:
    def test_logout_needs_the_csrf_token_then_ends_the_session(
        self, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        token = _login(web, system, seller["email"])
        assert web.post("/seller/logout").status_code == 403
        assert web.get("/seller/sales").status_code == 200
        done = web.post("/seller/logout", data={"csrf_token": token}, follow_redirects=False)
        assert done.status_code == 303
        assert done.headers["location"] == "/seller/login"
        assert web.get("/seller/sales", follow_redirects=False).status_code == 303

    def test_a_copy_of_the_cookie_taken_before_logout_opens_nothing(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        sale_id = _new_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        with TestClient(web.app, base_url="http://mailflow.test") as stolen:
            stolen.cookies.update(web.cookies)
            assert stolen.get("/seller/sales", follow_redirects=False).status_code == 200
            web.post("/seller/logout", data={"csrf_token": token})
            assert stolen.get("/seller/sales", follow_redirects=False).status_code == 303
            replay = stolen.post(
                f"/seller/sales/{sale_id}/refuse",
                data={"csrf_token": token, "reason": "other"},
                follow_redirects=False,
            )
            assert replay.status_code == 303
        assert _sale(api, sale_id)["status"] == "pending"


# The order list -----------------------------------------------------------------------------


class TestOrderList:
    def test_lists_only_the_sellers_own_sales_newest_first(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        clock: MovableClock,
        seller: dict[str, Any],
    ) -> None:
        other = factories.seller(api)
        mine = []
        for _ in range(3):
            mine.append(_new_sale(api, seller["id"]))
            _new_sale(api, other["id"])
            clock.advance(minutes=5)
        _login(web, system, seller["email"])
        page = web.get("/seller/sales")
        assert page.status_code == 200
        _assert_page(page)
        assert _sale_ids(page.text) == list(reversed(mine))
        assert "Ventes trouvées : 3" in _text(page.text)

    def test_twenty_per_page(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        clock: MovableClock,
        seller: dict[str, Any],
    ) -> None:
        ids = []
        for _ in range(23):
            ids.append(_new_sale(api, seller["id"]))
            clock.advance(seconds=30)
        _login(web, system, seller["email"])
        first = web.get("/seller/sales")
        assert _sale_ids(first.text) == list(reversed(ids))[:20]
        assert "Page 1 sur 2" in first.text
        assert 'href="/seller/sales?page=2"' in first.text
        second = web.get("/seller/sales?page=2")
        assert _sale_ids(second.text) == list(reversed(ids))[20:]
        assert 'href="/seller/sales"' in second.text and 'rel="prev"' in second.text
        # Out of range or malformed page numbers land on a real page.
        assert _sale_ids(web.get("/seller/sales?page=99").text) == list(reversed(ids))[20:]
        assert _sale_ids(web.get("/seller/sales?page=abc").text) == list(reversed(ids))[:20]

    def test_filter_by_status_and_search(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        book = _new_sale(api, seller["id"], title="Le Petit Prince", sku="PP-001")
        lamp = _new_sale(api, seller["id"], title="Lampe 100% laiton", sku="LAMP_7")
        vase = _accepted_sale(api, seller["id"], title="Vase bleu", sku="V-9")
        _login(web, system, seller["email"])

        assert _sale_ids(web.get("/seller/sales?status=accepted").text) == [vase]
        assert _sale_ids(web.get("/seller/sales?status=pending").text) == [lamp, book]
        assert _sale_ids(web.get("/seller/sales?q=petit").text) == [book]
        assert _sale_ids(web.get("/seller/sales?q=pp-0").text) == [book]
        assert _sale_ids(web.get("/seller/sales?q=100%25").text) == [lamp]
        assert _sale_ids(web.get("/seller/sales?q=P_").text) == [lamp]  # "_" is no wildcard
        assert _sale_ids(web.get("/seller/sales?q=%25").text) == [lamp]
        assert _sale_ids(web.get(f"/seller/sales?q=%23{vase}").text) == [vase]
        assert _sale_ids(web.get("/seller/sales?status=refused&q=petit").text) == []
        assert "Aucune vente ne correspond." in web.get("/seller/sales?q=nothing").text
        # An unknown status shows everything rather than failing.
        assert len(_sale_ids(web.get("/seller/sales?status=bogus").text)) == 3

    def test_search_by_the_orders_external_id(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        body = factories.order_body(seller["id"], external_id="MKT-778899")
        sale_id = api.post("/api/v1/orders", json=body).json()["sales"][0]["id"]
        _new_sale(api, seller["id"])
        _login(web, system, seller["email"])
        page = web.get("/seller/sales?q=778899")
        assert _sale_ids(page.text) == [sale_id]
        assert "MKT-778899" in page.text

    def test_filters_have_labels(
        self, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        _login(web, system, seller["email"])
        page = web.get("/seller/sales").text
        for field in ("status", "q"):
            assert f'<label for="{field}">' in page
            assert f'id="{field}" name="{field}"' in page


# A sale -------------------------------------------------------------------------------------


class TestSalePage:
    def test_shows_the_sale_its_events_and_the_actions_of_its_state(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        pending = _new_sale(api, seller["id"])
        accepted = _accepted_sale(api, seller["id"])
        _login(web, system, seller["email"])

        page = web.get(f"/seller/sales/{pending}")
        assert page.status_code == 200
        _assert_page(page)
        text = _text(page.text)
        assert f"Vente n° {pending}" in text
        assert "Le Petit Prince" in text and "12,50 €" in text
        assert "commande reçue" in text
        assert "Cliquez ici si l'article n'est plus disponible" in text
        assert f'action="/seller/sales/{pending}/accept"' in page.text
        assert f'action="/seller/sales/{pending}/refuse"' in page.text
        assert "Annuler la vente de cet article" not in text

        page = web.get(f"/seller/sales/{accepted}")
        text = _text(page.text)
        assert "Annuler la vente de cet article" in text
        assert "Cliquez ici si l'article n'est plus disponible" not in text
        assert f'action="/seller/sales/{accepted}/cancel/preview"' in page.text
        assert '<label for="cancel-reason">' in page.text
        assert '<label for="cancel-message">' in page.text
        assert 'maxlength="2000"' in page.text

    def test_another_sellers_sale_is_404_and_cannot_be_touched(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        other = factories.seller(api)
        theirs = _new_sale(api, other["id"])
        accepted = _accepted_sale(api, other["id"])
        token = _login(web, system, seller["email"])
        before = _outbox(system)

        page = web.get(f"/seller/sales/{theirs}")
        assert page.status_code == 404
        assert "Vente introuvable" in page.text
        assert "Le Petit Prince" not in page.text
        for action, sale_id in (
            ("accept", theirs),
            ("refuse", theirs),
            ("cancel", accepted),
            ("cancel/preview", accepted),
        ):
            response = web.post(
                f"/seller/sales/{sale_id}/{action}",
                data={"csrf_token": token, "reason": "other", "message": "hello"},
            )
            assert response.status_code == 404, action
            assert "Le Petit Prince" not in response.text
        assert _sale(api, theirs)["status"] == "pending"
        assert _sale(api, accepted)["status"] == "accepted"
        assert _outbox(system) == before

    @pytest.mark.parametrize("path", ["999999", "0", "-1", "abc", "1e3", "99999999999999999999"])
    def test_unknown_or_malformed_sale_numbers_are_404(
        self, web: TestClient, system: System, seller: dict[str, Any], path: str
    ) -> None:
        token = _login(web, system, seller["email"])
        assert web.get(f"/seller/sales/{path}").status_code == 404
        response = web.post(f"/seller/sales/{path}/accept", data={"csrf_token": token})
        assert response.status_code == 404


class TestMissingPages:
    """An address under /seller that is no page is a page in the seller's language (issue
    14, point 16): the signed-in seller's, else the browser's; never the API's JSON."""

    def test_an_unknown_address_is_a_page_in_the_browsers_language(self, web: TestClient) -> None:
        english = web.get("/seller/nothing-here", headers={"Accept-Language": "en"})
        assert english.status_code == 404
        _assert_page(english)
        assert '<h1 class="warn">Page not found</h1>' in english.text
        assert "There is no page at this address." in english.text
        french = web.get("/seller/nothing-here", headers={"Accept-Language": "fr"})
        assert french.status_code == 404
        assert "Il n&#39;y a pas de page à cette adresse." in french.text

    def test_a_signed_in_seller_reads_it_in_their_language(
        self, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        assert seller["locale"] == "fr"
        _login(web, system, seller["email"])
        page = web.get("/seller/sales/1/nothing", headers={"Accept-Language": "en"})
        assert page.status_code == 404
        assert '<h1 class="warn">Page introuvable</h1>' in page.text

    def test_a_form_address_opened_as_a_link_is_a_405_page(self, web: TestClient) -> None:
        page = web.get("/seller/logout", headers={"Accept-Language": "en"})
        assert page.status_code == 405
        assert page.headers["Allow"] == "POST"
        _assert_page(page)
        assert "This address does not open this way" in page.text


class TestAccept:
    def test_accept_goes_through_the_portal_channel(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        sale_id = _new_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        done = web.post(
            f"/seller/sales/{sale_id}/accept", data={"csrf_token": token}, follow_redirects=False
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"/seller/sales/{sale_id}"
        page = web.get(done.headers["location"])
        assert ("ok", "La vente est acceptée. L'acheteur en est informé.") in _flashes(page.text)
        sale = _sale(api, sale_id)
        assert sale["status"] == "accepted"
        assert sale["payment"]["state"] == "captured"
        assert sale["events"][-1]["actor"] == "seller"
        assert sale["events"][-1]["channel"] == "portal"
        assert _outbox(system, "buyer_sale_accepted") == 1

    def test_accepting_twice_says_so_and_sends_nothing_again(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        sale_id = _new_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        web.post(f"/seller/sales/{sale_id}/accept", data={"csrf_token": token})
        before = _outbox(system)
        page = web.post(f"/seller/sales/{sale_id}/accept", data={"csrf_token": token})
        assert page.status_code == 200
        assert ("ok", "Rien n'a changé : cette vente est déjà acceptée.") in _flashes(page.text)
        assert _outbox(system) == before


class TestRefuse:
    def test_refuse_with_a_reason(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        sale_id = _new_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        page = web.post(
            f"/seller/sales/{sale_id}/refuse", data={"csrf_token": token, "reason": "cannot_ship"}
        )
        assert page.status_code == 200
        assert ("ok", "La vente est refusée. L'acheteur en est informé.") in _flashes(page.text)
        sale = _sale(api, sale_id)
        assert (sale["status"], sale["reason"]) == ("refused", "cannot_ship")
        assert sale["events"][-1]["channel"] == "portal"
        assert _outbox(system, "buyer_sale_refused") == 1

    @pytest.mark.parametrize("reason", [None, "", "made_up", "OUT_OF_STOCK"])
    def test_a_missing_or_unknown_reason_is_422_and_changes_nothing(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        seller: dict[str, Any],
        reason: str | None,
    ) -> None:
        sale_id = _new_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        before = _outbox(system)
        data = {"csrf_token": token} | ({"reason": reason} if reason is not None else {})
        page = web.post(f"/seller/sales/{sale_id}/refuse", data=data)
        assert page.status_code == 422
        assert "Choisissez un motif dans la liste." in _text(page.text)
        assert _sale(api, sale_id)["status"] == "pending"
        assert _outbox(system) == before

    def test_refusing_an_accepted_sale_is_409_with_the_hint(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        sale_id = _accepted_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        before = _outbox(system)
        page = web.post(
            f"/seller/sales/{sale_id}/refuse", data={"csrf_token": token, "reason": "out_of_stock"}
        )
        assert page.status_code == 409
        text = _text(page.text)
        assert "Impossible : cette vente est acceptée." in text
        assert "annulez-la depuis « Toutes les commandes »" in text
        assert _sale(api, sale_id)["status"] == "accepted"
        assert _outbox(system) == before


class TestCancel:
    MESSAGE = "Bonjour,\r\nle dernier exemplaire est abîmé <b>désolé</b>.\r\nMarie"

    def test_preview_shows_what_the_buyer_will_read_and_changes_nothing(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
        seller: dict[str, Any],
    ) -> None:
        sale_id = _accepted_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        before = _outbox(system)
        form = {"csrf_token": token, "reason": "cannot_ship", "message": self.MESSAGE}

        preview = web.post(f"/seller/sales/{sale_id}/cancel/preview", data=form)
        assert preview.status_code == 200
        _assert_page(preview)
        assert "&lt;b&gt;désolé&lt;/b&gt;" in preview.text  # the message is text, never HTML
        shown = unescape(
            re.search(r'<pre class="preview email-text">(.*?)</pre>', preview.text, re.S).group(1)
        )  # type: ignore[union-attr]
        assert "Motif : expédition impossible" in shown
        assert "le dernier exemplaire est abîmé <b>désolé</b>." in shown
        assert "Vous êtes remboursé(e) de 12,50 €" in _text(shown)
        assert _sale(api, sale_id)["status"] == "accepted"
        assert _outbox(system) == before
        # The confirmation carries exactly what was previewed.
        assert 'name="reason" value="cannot_ship"' in preview.text
        confirm = re.search(r'name="message" value="([^"]*)"', preview.text)
        assert confirm and unescape(confirm.group(1)) == self.MESSAGE.replace("\r\n", "\n")

        done = web.post(
            f"/seller/sales/{sale_id}/cancel",
            data={
                "csrf_token": token,
                "reason": "cannot_ship",
                "message": unescape(confirm.group(1)),
            },
            follow_redirects=False,
        )
        assert done.status_code == 303
        deliver(system)
        sent = [
            m for m in relay[0].messages() if m["X-Mailflow-Template"] == "buyer_sale_cancelled"
        ]
        assert len(sent) == 1
        assert text_of(sent[0]) == shown
        assert sent[0]["Subject"] == unescape(
            re.search(r"<strong>(.*?)</strong>", preview.text).group(1)  # type: ignore[union-attr]
        )

    def test_cancel_with_a_message_tells_buyer_support_and_seller(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        sale_id = _accepted_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        page = web.post(
            f"/seller/sales/{sale_id}/cancel",
            data={"csrf_token": token, "reason": "other", "message": self.MESSAGE},
        )
        assert page.status_code == 200
        assert any("La vente est annulée." in m for _, m in _flashes(page.text))
        sale = _sale(api, sale_id)
        assert (sale["status"], sale["reason"]) == ("cancelled", "other")
        assert sale["payment"]["state"] == "refunded"
        assert sale["events"][-1]["channel"] == "portal"
        for key in ("buyer_sale_cancelled", "support_sale_cancelled", "seller_sale_cancelled"):
            assert _outbox(system, key) == 1, key
        assert "abîmé &lt;b&gt;désolé&lt;/b&gt;" in page.text  # shown on the sale, escaped

    def test_message_of_2000_characters_with_crlf_line_breaks_is_accepted(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        sale_id = _accepted_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        message = ("x" * 99 + "\r\n") * 20  # 2,000 characters as the textarea counts them
        page = web.post(
            f"/seller/sales/{sale_id}/cancel",
            data={"csrf_token": token, "reason": "other", "message": message},
        )
        assert page.status_code == 200
        assert _sale(api, sale_id)["status"] == "cancelled"

    @pytest.mark.parametrize("action", ["cancel", "cancel/preview"])
    def test_message_over_2000_characters_is_422_and_changes_nothing(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        seller: dict[str, Any],
        action: str,
    ) -> None:
        sale_id = _accepted_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        before = _outbox(system)
        page = web.post(
            f"/seller/sales/{sale_id}/{action}",
            data={"csrf_token": token, "reason": "other", "message": "y" * 2001},
        )
        assert page.status_code == 422
        assert "Le message fait 2001 caractères : 2000 au plus." in _text(page.text)
        assert "y" * 2001 in page.text  # the seller's text is kept for editing
        assert '<details class="action" open>' in page.text
        assert _sale(api, sale_id)["status"] == "accepted"
        assert _outbox(system) == before

    def test_control_characters_in_the_message_are_422(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        sale_id = _accepted_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        page = web.post(
            f"/seller/sales/{sale_id}/cancel",
            data={"csrf_token": token, "reason": "other", "message": "bad\x07bell"},
        )
        assert page.status_code == 422
        assert _sale(api, sale_id)["status"] == "accepted"

    @pytest.mark.parametrize("action", ["cancel", "cancel/preview"])
    def test_cancelling_a_pending_sale_is_409_with_the_hint(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        seller: dict[str, Any],
        action: str,
    ) -> None:
        sale_id = _new_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        before = _outbox(system)
        page = web.post(
            f"/seller/sales/{sale_id}/{action}",
            data={"csrf_token": token, "reason": "other", "message": "sorry"},
        )
        assert page.status_code == 409
        assert "refusez-la plutôt" in _text(page.text)
        assert _sale(api, sale_id)["status"] == "pending"
        assert _outbox(system) == before


class TestCsrf:
    @pytest.mark.parametrize(
        ("action", "accepted"),
        [("accept", False), ("refuse", False), ("cancel", True), ("cancel/preview", True)],
    )
    @pytest.mark.parametrize("token", [None, "", "forged-token"])
    def test_a_post_without_the_sessions_token_is_403_and_changes_nothing(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        seller: dict[str, Any],
        action: str,
        accepted: bool,
        token: str | None,
    ) -> None:
        sale_id = _accepted_sale(api, seller["id"]) if accepted else _new_sale(api, seller["id"])
        _login(web, system, seller["email"])
        status = _sale(api, sale_id)["status"]
        before = _outbox(system)
        data = {"reason": "other", "message": "hello"}
        if token is not None:
            data["csrf_token"] = token
        page = web.post(f"/seller/sales/{sale_id}/{action}", data=data)
        assert page.status_code == 403
        assert "Action refusée" in page.text
        assert _sale(api, sale_id)["status"] == status
        assert len(_sale(api, sale_id)["events"]) == (2 if accepted else 1)
        assert _outbox(system) == before

    def test_another_sessions_token_is_refused(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        sale_id = _new_sale(api, seller["id"])
        _login(web, system, seller["email"])
        with TestClient(web.app, base_url="http://mailflow.test") as attacker:
            foreign = _csrf(attacker.get("/seller/login").text)
        page = web.post(f"/seller/sales/{sale_id}/accept", data={"csrf_token": foreign})
        assert page.status_code == 403
        assert _sale(api, sale_id)["status"] == "pending"

    @pytest.mark.parametrize(
        "headers",
        [
            {"Origin": "http://evil.example"},
            {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
            {"Origin": "https://mailflow.test"},  # another scheme is another origin
            {"Sec-Fetch-Site": "cross-site"},
        ],
    )
    def test_a_post_from_another_site_is_403_even_with_the_token(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        seller: dict[str, Any],
        headers: dict[str, str],
    ) -> None:
        sale_id = _new_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        before = _outbox(system)
        data = {"csrf_token": token, "reason": "other"}
        page = web.post(f"/seller/sales/{sale_id}/refuse", data=data, headers=headers)
        assert page.status_code == 403
        assert "Action refusée" in page.text
        assert _sale(api, sale_id)["status"] == "pending"
        assert _outbox(system) == before

    @pytest.mark.parametrize(
        "headers",
        [
            {"Origin": "http://mailflow.test"},
            {"Origin": "HTTP://MAILFLOW.TEST:80"},
            {"Sec-Fetch-Site": "same-origin"},
            {"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # a no-referrer page
            {},
        ],
    )
    def test_a_post_from_the_service_itself_goes_through(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        seller: dict[str, Any],
        headers: dict[str, str],
    ) -> None:
        sale_id = _new_sale(api, seller["id"])
        token = _login(web, system, seller["email"])
        data = {"csrf_token": token, "reason": "other"}
        page = web.post(f"/seller/sales/{sale_id}/refuse", data=data, headers=headers)
        assert page.status_code == 200
        assert _sale(api, sale_id)["status"] == "refused"

    def test_a_logged_out_post_with_a_token_goes_to_login(
        self, api: TestClient, web: TestClient, system: System, seller: dict[str, Any]
    ) -> None:
        sale_id = _new_sale(api, seller["id"])
        token = _csrf(web.get("/seller/login").text)
        page = web.post(
            f"/seller/sales/{sale_id}/accept", data={"csrf_token": token}, follow_redirects=False
        )
        assert page.status_code == 303
        assert page.headers["location"] == "/seller/login"
        assert _sale(api, sale_id)["status"] == "pending"


# The rate -----------------------------------------------------------------------------------


class TestStats:
    def test_the_chart_the_threshold_the_tier_and_the_sales_that_count(
        self,
        api: TestClient,
        web: TestClient,
        system: System,
        clock: MovableClock,
        seller: dict[str, Any],
    ) -> None:
        other = factories.seller(api)
        cancelled = _accepted_sale(api, seller["id"])
        api.post(f"/api/v1/sales/{cancelled}/cancel", json={"reason": "other", "message": ""})
        withdrawn = _accepted_sale(api, seller["id"])
        api.post(f"/api/v1/sales/{withdrawn}/withdraw", json={})
        for _ in range(3):
            _new_sale(api, seller["id"])
        theirs = _accepted_sale(api, other["id"])
        api.post(f"/api/v1/sales/{theirs}/cancel", json={"reason": "other", "message": ""})
        _login(web, system, seller["email"])

        page = web.get("/seller/stats")
        assert page.status_code == 200
        _assert_page(page)
        text = _text(page.text)
        assert page.text.count("<svg") == 1
        assert 'role="img"' in page.text
        assert '<line class="threshold"' in page.text
        assert '<rect class="zone-warning"' in page.text
        assert re.search(r'<text class="threshold-label"[^>]*>5[\u00a0\u202f ]%</text>', page.text)
        # The sales are all of today: the 59 days before have no sale in their window, so no
        # dot and no line (a gap, not a rate of 0 %).
        assert page.text.count('<circle class="dot') == 1
        assert page.text.count('<polyline class="rate-line"') == 1
        assert "25 %" in text  # 1 cancelled / 4 counted
        # Under min_sales the tier is ok whatever the rate: the page says what that means,
        # and a rate over the threshold is never called good.
        assert '<p class="big">Pas encore assez de ventes</p>' in page.text
        assert "Bon" not in text
        assert "Pas encore assez de ventes pour une alerte (4 comptées" in text
        assert "Votre taux de 25 % dépasse le seuil de 5 %" in text.replace("\u202f", " ")
        counting = page.text.split('id="counting-title"')[1]
        assert f'href="/seller/sales/{cancelled}"' in counting
        assert f'href="/seller/sales/{withdrawn}"' not in counting
        assert f'href="/seller/sales/{theirs}"' not in counting

    def test_in_english_the_threshold_reads_5_percent(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        english = factories.seller(api, locale="en")
        _login(web, system, english["email"])
        page = web.get("/seller/stats")
        assert re.search(r'<text class="threshold-label"[^>]*>5%</text>', page.text)
        assert "My cancellation rate" in page.text
        assert "No sale counts in your rate at the moment." in page.text


class TestRateHistory:
    def test_each_day_counts_sales_in_the_state_they_were_then(
        self, api: TestClient, system: System, clock: MovableClock, seller: dict[str, Any]
    ) -> None:
        start = clock.now
        sales = [_accepted_sale(api, seller["id"]) for _ in range(4)]
        clock.advance(days=10)
        api.post(f"/api/v1/sales/{sales[0]}/cancel", json={"reason": "other", "message": ""})
        clock.advance(days=5)

        history = portal.rate_history(system.services, seller["id"])
        assert len(history) == 60
        assert history[-1]["at"] == clock.now
        by_day = {round((p["at"] - start).total_seconds() / 86400): p for p in history}
        assert by_day[-1]["counted"] == 0  # before the sales existed
        assert by_day[5]["rate"] == 0.0 and by_day[5]["counted"] == 4  # not yet cancelled
        assert by_day[10]["rate"] == pytest.approx(0.25)
        assert by_day[15]["rate"] == pytest.approx(0.25)
        assert history[-1]["rate"] == portal_stats_rate(system, seller["id"])

    def test_sales_leave_the_window_after_window_days(
        self, api: TestClient, system: System, clock: MovableClock, seller: dict[str, Any]
    ) -> None:
        sale_id = _accepted_sale(api, seller["id"])
        api.post(f"/api/v1/sales/{sale_id}/cancel", json={"reason": "other", "message": ""})
        clock.advance(days=45)
        history = portal.rate_history(system.services, seller["id"])
        assert history[-1]["counted"] == 0
        assert history[-1]["rate"] == 0.0
        assert max(p["rate"] for p in history) == 1.0


def portal_stats_rate(system: System, seller_id: int) -> float:
    from mailflow.services import policy

    return float(policy.stats(system.services, seller_id)["rate"])


class TestLoginLinkService:
    def test_login_link_seller_says_used_after_use(
        self, system: System, seller: dict[str, Any]
    ) -> None:
        accounts.request_login_link(system.services, seller["email"])
        path = _login_path(system, seller["email"])
        token = path.rsplit("/", 1)[1]
        assert portal.login_link_seller(system.services, token) == seller["id"]
        assert accounts.use_login_link(system.services, token) == seller["id"]
        with pytest.raises(accounts.LoginFailed, match="used"):
            portal.login_link_seller(system.services, token)


class TestCatalog:
    def test_every_seller_text_exists_in_french_and_english(self) -> None:
        from mailflow.i18n.catalogs import texts

        CATALOG = {locale: texts(locale) for locale in ("fr", "en")}

        french = {k for k in CATALOG["fr"] if k.startswith("seller.")}
        english = {k for k in CATALOG["en"] if k.startswith("seller.")}
        assert french == english
        assert all(
            CATALOG["en"][k] != CATALOG["fr"][k] for k in french if len(CATALOG["fr"][k]) > 12
        )

    def test_the_pages_own_stylesheet_is_served(self, web: TestClient) -> None:
        css = web.get("/static/seller.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
