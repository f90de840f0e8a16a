"""The whole loop: order in → seller email → GET link (nothing changes) → POST → buyer email."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailflow.bootstrap import System
from mailflow.store.models import OutboxMessage
from tests import factories
from tests.support import RelayHandler, deliver, html_of, links_in, path_of, text_of


def _status(api: TestClient, sale_id: int) -> str:
    return api.get(f"/api/v1/sales/{sale_id}").json()["status"]


def _outbox_count(system: System) -> int:
    with system.db.read() as session:
        return session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one()


class TestRefuseFromTheEmail:
    def test_order_email_get_post_refused_buyer_told(
        self, api: TestClient, web: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        handler, _ = relay
        seller = factories.seller(api, name="Librairie Dupont")
        order = factories.order(api, seller["id"])
        sale_id = order["sales"][0]["id"]
        assert order["sales"][0]["status"] == "pending"

        assert deliver(system) == 1
        [seller_mail] = handler.messages()
        assert seller_mail["To"].addresses[0].addr_spec == seller["email"]
        assert seller_mail["X-Mailflow-Template"] == "seller_new_sale"
        assert seller_mail["Auto-Submitted"] == "auto-generated"
        assert "Cliquez ici si l'article n'est plus disponible" in text_of(seller_mail)
        assert "Cliquez ici si l'article n'est plus disponible" in html_of(seller_mail)
        assert "12,50\u00a0€" in text_of(seller_mail)
        accept, refuse, view = links_in(seller_mail)
        for link in (accept, refuse, view):
            assert link in html_of(seller_mail)

        # A mail scanner fetching the link changes nothing and sends nothing.
        page = web.get(path_of(refuse))
        assert page.status_code == 200
        assert "Refuser cette vente" in page.text
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert page.headers["Cache-Control"] == "no-store"
        assert _status(api, sale_id) == "pending"
        before = _outbox_count(system)

        done = web.post(path_of(refuse))
        assert done.status_code == 200
        assert "La vente a été refusée" in done.text
        assert _status(api, sale_id) == "refused"
        assert _outbox_count(system) == before + 1

        assert deliver(system) == 1
        buyer_mail = handler.messages()[-1]
        assert buyer_mail["X-Mailflow-Template"] == "buyer_sale_refused"
        assert "ne serez pas débité" in text_of(buyer_mail)

        sale = api.get(f"/api/v1/sales/{sale_id}").json()
        assert sale["payment"]["state"] == "released"
        assert [e["action"] for e in sale["events"]] == ["create", "refuse"]
        assert sale["events"][1]["channel"] == "email-link"
        assert sale["events"][1]["actor"] == "seller"

        # A second click is answered as success and sends nothing again.
        again = web.post(path_of(refuse))
        assert again.status_code == 200
        assert "déjà refusée" in again.text
        assert _outbox_count(system) == before + 1

    def test_view_link_shows_the_sale_and_changes_nothing(
        self, api: TestClient, web: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller = factories.seller(api, locale="en")
        sale_id = factories.order(api, seller["id"])["sales"][0]["id"]
        deliver(system)
        [mail] = relay[0].messages()
        assert mail["Subject"].startswith("New sale")
        *_, view = links_in(mail)
        for method in (web.get, web.post):
            page = method(path_of(view))
            assert page.status_code == 200
            assert "Click here if the article is no longer available" in page.text
        assert _status(api, sale_id) == "pending"


class TestAcceptThenRefuse:
    def test_accept_link_then_refuse_is_409_with_a_hint(
        self, api: TestClient, web: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller = factories.seller(api)
        sale_id = factories.order(api, seller["id"])["sales"][0]["id"]
        deliver(system)
        accept, refuse, _ = links_in(relay[0].messages()[0])

        assert web.get(path_of(accept)).status_code == 200
        assert _status(api, sale_id) == "pending"
        assert web.post(path_of(accept)).status_code == 200
        assert _status(api, sale_id) == "accepted"
        deliver(system)
        assert relay[0].messages()[-1]["X-Mailflow-Template"] == "buyer_sale_accepted"
        sale = api.get(f"/api/v1/sales/{sale_id}").json()
        assert sale["payment"]["state"] == "captured"
        assert sale["payment"]["commission"] == "1.25"
        assert sale["payment"]["payout"] == "11.25"

        conflict = web.post(path_of(refuse))
        assert conflict.status_code == 409
        assert "Annuler la vente de cet article" in conflict.text
        assert web.get(path_of(refuse)).status_code == 409
        api_conflict = api.post(f"/api/v1/sales/{sale_id}/refuse", json={"reason": "other"})
        assert api_conflict.status_code == 409
        body = api_conflict.json()
        assert body["error"] == "illegal_transition"
        assert body["status"] == "accepted"
        assert "cancel" in body["hint"]
        assert _status(api, sale_id) == "accepted"

    def test_ship_after_accept_and_not_before(self, api: TestClient) -> None:
        seller = factories.seller(api)
        sale_id = factories.order(api, seller["id"])["sales"][0]["id"]
        early = api.post(f"/api/v1/sales/{sale_id}/ship")
        assert early.status_code == 409
        assert "Accept the sale before shipping" in early.json()["hint"]
        assert api.post(f"/api/v1/sales/{sale_id}/accept").status_code == 200
        shipped = api.post(f"/api/v1/sales/{sale_id}/ship")
        assert shipped.status_code == 200
        assert shipped.json()["status"] == "shipped"
        again = api.post(f"/api/v1/sales/{sale_id}/ship")
        assert again.status_code == 200 and again.json()["changed"] is False


class TestUnknownSale:
    def test_link_for_a_sale_that_does_not_exist_is_404(
        self, web: TestClient, system: System
    ) -> None:
        token = system.signer.sale_token(999_999, "refuse")
        assert web.get(f"/s/{token}").status_code == 404
        page = web.post(f"/s/{token}")
        assert page.status_code == 404
        assert "Vente introuvable" in page.text

    def test_api_404(self, api: TestClient) -> None:
        response = api.get("/api/v1/sales/424242")
        assert response.status_code == 404
        assert api.post("/api/v1/sales/424242/accept").status_code == 404
