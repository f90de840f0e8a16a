"""The templates API against a real database and a real SMTP relay.

Drafts change no mail, publishing does, rollback restores; invalid templates are answered 422
with each problem's part and line and nothing is stored; a preview is what is then sent, part
for part; test sends are delivered; drift of a shipped default is shown; the recipient's locale
picks the set. Shipped texts are never hard-coded here (they change with releases): shipped
mail is recognised by the absence of the edited version's marker and by the preview.
"""

from __future__ import annotations

import shutil
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailflow.bootstrap import System, build
from mailflow.mail import catalog
from mailflow.mail.templates import templates_root
from mailflow.store.models import OutboxMessage
from mailflow.web.app import create_app
from tests import factories
from tests.conftest import API_TOKEN, make_settings
from tests.support import MovableClock, RelayHandler, deliver, html_of, links_in, text_of

URL = "/api/v1/templates"
MARK = "[Édité]"

NEW_SALE = {
    "subject": MARK + " Vente {{ sale.id }} : {{ sale.title }}",
    "text": (
        "Bonjour {{ seller.name }},\n"
        "Montant : {{ sale.amount_cents|money(sale.currency) }}\n"
        "Accepter : {{ links.accept }}\n"
        "Cliquez ici si l'article n'est plus disponible : {{ links.refuse }}\n"
        "Voir : {{ links.view }}\n"
    ),
    "html": (
        "<style>p { color: #123456; }</style>\n"
        "<p>Bonjour {{ seller.name }},</p>\n"
        "<p>Montant : {{ sale.amount_cents|money(sale.currency) }}</p>\n"
        '<p><a href="{{ links.accept }}">Accepter</a></p>\n'
        "<p><a href=\"{{ links.refuse }}\">Cliquez ici si l'article n'est plus disponible</a></p>\n"
        '<p><a href="{{ links.view }}">Voir</a></p>\n'
    ),
}
NEW_SALE_EN = {
    "subject": MARK + " Sale {{ sale.id }}: {{ sale.title }}",
    "text": NEW_SALE["text"].replace("Bonjour", "Hello"),
    "html": NEW_SALE["html"].replace("Bonjour", "Hello"),
}


def _put(api: TestClient, key: str, locale: str, **parts: str) -> Any:
    return api.put(f"{URL}/{key}/{locale}", json=parts)


def _draft(api: TestClient, key: str, locale: str, parts: dict[str, str]) -> int:
    response = _put(api, key, locale, **parts)
    assert response.status_code == 201, response.text
    version: int = response.json()["version"]
    return version


def _publish(api: TestClient, key: str, locale: str, version: int, how: str = "publish") -> Any:
    response = api.post(f"{URL}/{key}/{locale}/{how}", json={"version": version})
    assert response.status_code == 200, response.text
    return response.json()


def _new_sale_mail(
    api: TestClient, system: System, relay: RelayHandler, seller_id: int
) -> tuple[int, EmailMessage]:
    """Post an order to the seller, deliver, and return the sale and the seller's email."""
    sale_id = factories.order(api, seller_id)["sales"][0]["id"]
    deliver(system)
    mails = [
        m
        for m in relay.messages()
        if m["X-Mailflow-Template"] == "seller_new_sale" and "/s/" in text_of(m)
    ]
    mine = [m for m in mails if _sale_of(system, m) == sale_id]
    assert len(mine) == 1
    return sale_id, mine[0]


def _sale_of(system: System, mail: EmailMessage) -> int:
    token = links_in(mail)[0].rsplit("/", 1)[1]
    return system.signer.verify_sale_token(token).sale_id


def _parts(mail: EmailMessage) -> dict[str, str]:
    return {"subject": str(mail["Subject"]), "text": text_of(mail), "html": html_of(mail)}


def _show(api: TestClient, key: str, locale: str) -> dict[str, Any]:
    response = api.get(f"{URL}/{key}/{locale}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _listed(api: TestClient, key: str, locale: str) -> dict[str, Any]:
    response = api.get(URL)
    assert response.status_code == 200
    [row] = [r for r in response.json() if (r["key"], r["locale"]) == (key, locale)]
    return row  # type: ignore[no-any-return]


class TestListAndShow:
    def test_every_key_of_the_catalog_in_both_locales(self, api: TestClient) -> None:
        rows = api.get(URL).json()
        assert {(r["key"], r["locale"]) for r in rows} == {
            (key, locale) for key in catalog.KINDS for locale in ("fr", "en")
        }
        assert all(r["published_version"] == 0 and not r["default_changed"] for r in rows)
        for key, kind in catalog.KINDS.items():
            for locale in ("fr", "en"):
                shown = _show(api, key, locale)
                assert shown["version"] == 0 and shown["drafts"] == []
                assert shown["variables"] == kind.variables
                assert shown["subject"].strip() and shown["text"].strip()
                assert shown["html"].strip()


class TestDraftPublishRollback:
    def test_draft_changes_no_mail_publish_does_rollback_restores(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        handler, _ = relay
        seller = factories.seller(api, name="Librairie Dupont")

        assert _draft(api, "seller_new_sale", "fr", NEW_SALE) == 1
        shown = _show(api, "seller_new_sale", "fr")
        assert (shown["version"], shown["published_version"]) == (0, 0)
        assert [(d["version"], d["published"]) for d in shown["drafts"]] == [(1, False)]
        assert MARK not in shown["subject"]

        # A draft changes no mail: the seller gets the shipped email, as its preview says.
        sale_id, mail = _new_sale_mail(api, system, handler, seller["id"])
        assert MARK not in mail["Subject"]
        preview = api.post(f"{URL}/seller_new_sale/fr/preview", json={"sale_id": sale_id})
        assert preview.json() == _parts(mail)

        published = _publish(api, "seller_new_sale", "fr", 1)
        assert (published["version"], published["published_version"]) == (1, 1)
        assert published["subject"] == NEW_SALE["subject"]
        assert _listed(api, "seller_new_sale", "fr")["published_version"] == 1

        sale_id, mail = _new_sale_mail(api, system, handler, seller["id"])
        assert mail["Subject"] == f"{MARK} Vente {sale_id} : Le Petit Prince"
        accept, refuse, view = links_in(mail)
        assert text_of(mail) == (
            "Bonjour Librairie Dupont,\n"
            "Montant : 12,50\u00a0€\n"
            f"Accepter : {accept}\n"
            f"Cliquez ici si l'article n'est plus disponible : {refuse}\n"
            f"Voir : {view}\n"
        )
        html = html_of(mail)
        assert "<style" not in html and "color: #123456" in html  # CSS inlined
        assert f'href="{refuse}"' in html

        # A second draft while version 1 is live changes nothing either.
        second = {**NEW_SALE, "subject": "[v2] {{ sale.id }}"}
        assert _draft(api, "seller_new_sale", "fr", second) == 2
        _, mail = _new_sale_mail(api, system, handler, seller["id"])
        assert mail["Subject"].startswith(MARK)

        # Rollback to 0: the shipped files again.
        rolled = _publish(api, "seller_new_sale", "fr", 0, "rollback")
        assert (rolled["version"], rolled["published_version"]) == (0, 0)
        _, mail = _new_sale_mail(api, system, handler, seller["id"])
        assert MARK not in mail["Subject"] and not mail["Subject"].startswith("[v2]")

        # Rollback to version 1 again.
        rolled = _publish(api, "seller_new_sale", "fr", 1, "rollback")
        assert rolled["published_version"] == 1
        sale_id, mail = _new_sale_mail(api, system, handler, seller["id"])
        assert mail["Subject"] == f"{MARK} Vente {sale_id} : Le Petit Prince"

        shown = _show(api, "seller_new_sale", "fr")
        assert [(d["version"], d["published"]) for d in shown["drafts"]] == [
            (1, True),
            (2, False),
        ]
        assert _listed(api, "seller_new_sale", "fr")["latest_version"] == 2

    def test_show_a_given_version(self, api: TestClient) -> None:
        _draft(api, "seller_new_sale", "fr", NEW_SALE)
        shown = api.get(f"{URL}/seller_new_sale/fr", params={"version": 1}).json()
        assert shown["version"] == 1 and shown["published_version"] == 0
        assert (shown["subject"], shown["text"], shown["html"]) == (
            NEW_SALE["subject"],
            NEW_SALE["text"],
            NEW_SALE["html"],
        )
        assert api.get(f"{URL}/seller_new_sale/fr", params={"version": 9}).status_code == 404

    def test_versions_are_numbered_per_key_and_locale(self, api: TestClient) -> None:
        assert _draft(api, "seller_new_sale", "fr", NEW_SALE) == 1
        assert _draft(api, "seller_new_sale", "fr", NEW_SALE) == 2
        assert _draft(api, "seller_new_sale", "en", NEW_SALE_EN) == 1
        assert _draft(api, "seller_deadline_reminder", "fr", NEW_SALE) == 1

    def test_publishing_a_version_that_does_not_exist_is_404(self, api: TestClient) -> None:
        _draft(api, "seller_new_sale", "fr", NEW_SALE)
        for how in ("publish", "rollback"):
            response = api.post(f"{URL}/seller_new_sale/fr/{how}", json={"version": 2})
            assert response.status_code == 404
            # A version of another locale is not this locale's.
            response = api.post(f"{URL}/seller_new_sale/en/{how}", json={"version": 1})
            assert response.status_code == 404
        assert _listed(api, "seller_new_sale", "fr")["published_version"] == 0


# (key, locale, changes to the shipped parts, expected [(part, line)], words of the message)
INVALID: dict[str, tuple[str, dict[str, str], list[tuple[str, int | None]], str]] = {
    "syntax-html-line-3": (
        "seller_new_sale",
        {"html": "<p>un</p>\n<p>deux</p>\n<p>{{ sale.title + }}</p>\n" + NEW_SALE["html"]},
        [("html", 3)],
        "syntax error",
    ),
    "unknown-variable-text-line-2": (
        "seller_new_sale",
        {"text": "Bonjour,\n{{ tracking_number }}\n" + NEW_SALE["text"]},
        [("text", 2)],
        "tracking_number",
    ),
    "unknown-attribute": (
        "seller_new_sale",
        {"subject": "Vente : {{ sale.titel }}"},
        [("subject", 1)],
        "titel",
    ),
    "no-refuse-link-in-text": (
        "seller_new_sale",
        {"text": "Accepter : {{ links.accept }}\nVoir : {{ links.view }}\n"},
        [("text", None)],
        "links.refuse",
    ),
    "no-refuse-link-in-html": (
        "seller_new_sale",
        {"html": '<p><a href="{{ links.accept }}">A</a> <a href="{{ links.view }}">V</a></p>'},
        [("html", None)],
        "links.refuse",
    ),
    "cancelled-without-message": (
        "buyer_sale_cancelled",
        {
            "text": "Bonjour {{ buyer.name }},\nVente annulée.\n",
            "html": "<p>Bonjour {{ buyer.name }},</p>\n<p>Vente annulée.</p>\n",
        },
        [("text", None), ("html", None)],
        "sale.message",
    ),
    "unclosed-table": (
        "seller_new_sale",
        {"html": NEW_SALE["html"] + "<table>\n<tr><td>x</td></tr>\n"},
        [("html", 7)],
        "<table>",
    ),
    "stray-div": (
        "seller_new_sale",
        {"html": NEW_SALE["html"] + "<p>fin</p>\n</div>\n"},
        [("html", 8)],
        "</div>",
    ),
    "empty-subject": ("seller_new_sale", {"subject": "  "}, [("subject", None)], "empty"),
    "unknown-filter": (
        "seller_new_sale",
        {"html": NEW_SALE["html"] + "<p>\n{{ sale.title|shout }}</p>\n"},
        [("html", 8)],
        "shout",
    ),
    "unknown-test": (
        "seller_new_sale",
        {"text": NEW_SALE["text"] + "{% if sale.title is shouted %}!{% endif %}\n"},
        [("text", 6)],
        "shouted",
    ),
}


class TestInvalidTemplates:
    def _refused(self, api: TestClient, system: System, case: str) -> str | None:
        """What is wrong with the answer to ``case``, or None when it is as it should be."""
        key, changes, where, words = INVALID[case]
        shipped = system.renderer.shipped(key, "fr")
        body = {"subject": shipped.subject, "text": shipped.text, "html": shipped.html, **changes}
        response = _put(api, key, "fr", **body)
        if response.status_code != 422:
            return f"PUT answered {response.status_code}: {response.text}"
        errors = response.json()["errors"]
        if [(e["part"], e["line"]) for e in errors] != where:
            return f"errors {errors}, expected {where}"
        if not all(set(e) == {"part", "line", "message"} for e in errors):
            return f"errors {errors} have other fields"
        if words not in errors[0]["message"]:
            return f"{errors[0]['message']!r} does not name {words!r}"
        # Nothing was stored.
        if _show(api, key, "fr")["drafts"] or _listed(api, key, "fr")["latest_version"]:
            return "a draft was stored"
        # The preview of the same parts is refused the same way.
        preview = api.post(f"{URL}/{key}/fr/preview", json=body)
        if preview.status_code != 422 or preview.json()["errors"] != errors:
            return f"preview answered {preview.status_code}: {preview.text}"
        return None

    def test_each_invalid_template_is_422_with_part_and_line_and_nothing_stored(
        self, api: TestClient, system: System
    ) -> None:
        cases = sorted(set(INVALID) - {"unknown-filter"})  # its own test below
        wrong = {case: self._refused(api, system, case) for case in cases}
        assert {case: why for case, why in wrong.items() if why} == {}

    def test_an_unknown_filter_is_422_not_a_crash(self, api: TestClient, system: System) -> None:
        assert self._refused(api, system, "unknown-filter") is None

    def test_a_nul_character_is_refused_and_nothing_stored(self, api: TestClient) -> None:
        for part in ("subject", "text", "html"):
            body = {**NEW_SALE, part: NEW_SALE[part] + "fin\x00"}
            response = _put(api, "seller_new_sale", "fr", **body)
            assert response.status_code == 422, (part, response.text)
            answer = response.json()
            named = [d["field"] for d in answer.get("detail", [])]
            named += [e["part"] for e in answer.get("errors", [])]
            assert part in named
        assert _show(api, "seller_new_sale", "fr")["drafts"] == []

    def test_a_template_fine_on_the_sample_but_failing_on_a_real_sale(
        self, api: TestClient
    ) -> None:
        # The sample sale is number 12; the first real sale is number 1.
        seller = factories.seller(api)
        sale_id = factories.order(api, seller["id"])["sales"][0]["id"]
        text = NEW_SALE["text"] + "{{ 100 // (sale.id - " + str(sale_id) + ") }}\n"
        response = api.post(
            f"{URL}/seller_new_sale/fr/preview", json={"text": text, "sale_id": sale_id}
        )
        assert response.status_code == 422
        [error] = response.json()["errors"]
        assert (error["part"], error["line"]) == ("text", 6)
        assert "division" in error["message"]


class TestPreview:
    def test_sample_context_in_fr_shows_euros_the_french_way(self, api: TestClient) -> None:
        for key in ("seller_new_sale", "buyer_sale_accepted"):
            response = api.post(f"{URL}/{key}/fr/preview", json={})
            assert response.status_code == 200
            preview = response.json()
            assert set(preview) == {"subject", "text", "html"}
            assert "12,50\u00a0€" in preview["text"]
            assert "12,50\u00a0€" in preview["html"]
            assert "Le Petit Prince (édition 1999)" in preview["text"]

    def test_sample_context_in_en(self, api: TestClient) -> None:
        preview = api.post(f"{URL}/buyer_sale_accepted/en/preview", json={}).json()
        assert "€12.50" in preview["text"] and "12,50" not in preview["text"]

    def test_given_parts_over_the_published_version(self, api: TestClient) -> None:
        whole = api.post(f"{URL}/seller_new_sale/fr/preview", json={}).json()
        partial = api.post(
            f"{URL}/seller_new_sale/fr/preview", json={"subject": "Essai {{ sale.id }}\n"}
        ).json()
        assert partial["subject"] == "Essai 12"
        assert (partial["text"], partial["html"]) == (whole["text"], whole["html"])
        # Over a published version, the missing parts are that version's.
        _publish(api, "seller_new_sale", "fr", _draft(api, "seller_new_sale", "fr", NEW_SALE))
        partial = api.post(
            f"{URL}/seller_new_sale/fr/preview", json={"subject": "Essai {{ sale.id }}"}
        ).json()
        assert partial["text"].startswith("Bonjour Librairie Dupont,\nMontant : 12,50\u00a0€\n")

    def test_a_draft_is_previewed_without_being_published(self, api: TestClient) -> None:
        preview = api.post(f"{URL}/seller_new_sale/fr/preview", json=NEW_SALE).json()
        assert preview["subject"] == f"{MARK} Vente 12 : Le Petit Prince (édition 1999)"
        assert _show(api, "seller_new_sale", "fr")["drafts"] == []

    def test_preview_with_a_real_sale(self, api: TestClient) -> None:
        seller = factories.seller(api, name="Bouquinerie Martin")
        sale_id = factories.order(api, seller["id"])["sales"][0]["id"]
        preview = api.post(
            f"{URL}/seller_new_sale/fr/preview", json={**NEW_SALE, "sale_id": sale_id}
        ).json()
        assert preview["subject"] == f"{MARK} Vente {sale_id} : Le Petit Prince"
        assert preview["text"].startswith("Bonjour Bouquinerie Martin,\n")
        assert "/s/" in preview["text"] and "sample" not in preview["text"]

    def test_preview_of_a_tier_email_with_a_real_sale_uses_the_seller(
        self, api: TestClient
    ) -> None:
        seller = factories.seller(api, name="Bouquinerie Martin")
        sale_id = factories.order(api, seller["id"])["sales"][0]["id"]
        response = api.post(f"{URL}/seller_rate_alert/fr/preview", json={"sale_id": sale_id})
        assert response.status_code == 200
        assert "Bouquinerie Martin" in response.json()["text"]


ACCEPTED = {
    "subject": "Commande {{ order.external_id }} : {{ sale.title }} ({{ sale.quantity }})",
    "text": (
        "Bonjour {{ buyer.name }},\n"
        "{{ seller.name }} a accepté la vente {{ sale.id }}.\n"
        "Montant : {{ sale.amount_cents|money(sale.currency) }}\n"
        "Le {{ event.at|datetime }}\n"
        "Commandé le {{ sale.created_at|date }} ; limite {{ sale.deadline|datetime('short') }}\n"
    ),
    "html": (
        "<style>.n { font-weight: bold; } p { margin: 0 0 8px; }</style>\n"
        '<p>Bonjour <span class="n">{{ buyer.name }}</span>,</p>\n'
        "<p>{{ seller.name }} a accepté la vente {{ sale.id }} : « {{ sale.title }} ».</p>\n"
        "<p>Montant : {{ sale.amount_cents|money(sale.currency) }}</p>\n"
        "<p>Le {{ event.at|datetime }}</p>\n"
    ),
}
ACCEPTED_STATEFUL = {
    "subject": "{{ sale.status }} / {{ payment.state }} : {{ order.external_id }}",
    "text": ACCEPTED["text"] + "État : {{ sale.status }}, paiement {{ payment.state }} "
    "{{ payment.amount_cents|money(payment.currency) }}, commission "
    "{{ payment.commission_cents|money(payment.currency) }}\n"
    "Par {{ event.actor }} via {{ event.channel }} à {{ event.at|datetime('full') }}\n",
    "html": ACCEPTED["html"]
    + "<p>{{ sale.status }} {{ payment.state }} {{ event.actor }} {{ event.channel }}</p>\n",
}


class TestPreviewIsWhatIsSent:
    def test_preview_of_the_published_version_equals_the_email_the_next_change_sends(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        handler, _ = relay
        version = _draft(api, "buyer_sale_accepted", "fr", ACCEPTED)
        _publish(api, "buyer_sale_accepted", "fr", version)
        seller = factories.seller(api, name="Librairie Dupont")
        order = factories.order_body(seller["id"])
        created = api.post("/api/v1/orders", json=order)
        assert created.status_code == 201
        sale_id = created.json()["sales"][0]["id"]
        deliver(system)

        response = api.post(f"{URL}/buyer_sale_accepted/fr/preview", json={"sale_id": sale_id})
        assert response.status_code == 200
        preview = response.json()

        assert api.post(f"/api/v1/sales/{sale_id}/accept").status_code == 200
        deliver(system)
        [mail] = [
            m for m in handler.messages() if m["X-Mailflow-Template"] == "buyer_sale_accepted"
        ]
        assert _parts(mail) == preview
        # ... and it is the published version, not the shipped one.
        assert mail["Subject"] == f"Commande {order['external_id']} : Le Petit Prince (1)"
        assert "Montant : 12,50\u00a0€" in text_of(mail)
        assert 'class="n"' in html_of(mail) and "font-weight: bold" in html_of(mail)

    @pytest.mark.parametrize(
        ("action", "body", "key", "locale", "template"),
        [
            ("accept", None, "buyer_sale_accepted", "fr", ACCEPTED_STATEFUL),
            ("accept", None, "buyer_sale_accepted", "en", None),
            ("refuse", {"reason": "out_of_stock"}, "buyer_sale_refused", "fr", None),
            ("cancel", {"reason": "cannot_ship", "message": "Désolé,\nabîmé."}, None, "fr", None),
            ("withdraw", {"note": "client"}, "buyer_withdrawal_confirmed", "en", None),
        ],
        ids=["accept-edited", "accept-shipped-en", "refuse", "cancel", "withdraw"],
    )
    def test_preview_after_the_change_equals_every_email_it_sent(
        self,
        api: TestClient,
        system: System,
        relay: tuple[RelayHandler, int],
        action: str,
        body: dict[str, str] | None,
        key: str | None,
        locale: str,
        template: dict[str, str] | None,
    ) -> None:
        handler, _ = relay
        if template is not None:
            assert key is not None
            _publish(api, key, locale, _draft(api, key, locale, template))
        seller = factories.seller(api, name="Librairie Dupont", locale=locale)
        buyer = {"email": "eloise@mail.example", "name": "Éloïse Müller", "locale": locale}
        sale_id = factories.order(api, seller["id"], buyer=buyer)["sales"][0]["id"]
        if action in ("cancel", "withdraw"):
            assert api.post(f"/api/v1/sales/{sale_id}/accept").status_code == 200
        deliver(system)
        before = len(handler.messages())
        response = api.post(f"/api/v1/sales/{sale_id}/{action}", json=body)
        assert response.status_code == 200, response.text
        deliver(system)
        sent = handler.messages()[before:]
        keys = (
            [key]
            if key
            else ["buyer_sale_cancelled", "support_sale_cancelled", "seller_sale_cancelled"]
        )
        assert sorted(m["X-Mailflow-Template"] for m in sent) == sorted(keys)
        for mail in sent:
            name = mail["X-Mailflow-Template"]
            to_support = mail["To"].addresses[0].addr_spec == "support@marketplace.example"
            mail_locale = "fr" if to_support else locale
            preview = api.post(f"{URL}/{name}/{mail_locale}/preview", json={"sale_id": sale_id})
            assert preview.status_code == 200, preview.text
            assert preview.json() == _parts(mail), name


class TestTestSend:
    def test_queued_and_delivered_to_the_address(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        handler, _ = relay
        response = api.post(f"{URL}/seller_new_sale/fr/test-send", json={"to": "qa@example.org"})
        assert response.status_code == 202, response.text
        assert response.json()["to"] == "qa@example.org"
        assert isinstance(response.json()["queued"], int)
        assert deliver(system) == 1
        [mail] = handler.messages()
        assert handler.received[0].rcpt_tos == ["qa@example.org"]
        assert mail["X-Mailflow-Template"] == "seller_new_sale"
        preview = api.post(f"{URL}/seller_new_sale/fr/preview", json={}).json()
        # Marked, so that nobody takes it for a real email.
        assert mail["Subject"] == f"[TEST] {preview['subject']}"
        assert mail["X-Mailflow-Test"] == "yes"
        # A test send renders the key's sample context, as the preview does.
        assert text_of(mail) == preview["text"]

    def test_sends_the_published_version_in_the_given_locale(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        _publish(api, "seller_new_sale", "en", _draft(api, "seller_new_sale", "en", NEW_SALE_EN))
        for locale in ("en", "fr"):
            response = api.post(
                f"{URL}/seller_new_sale/{locale}/test-send", json={"to": f"{locale}@example.org"}
            )
            assert response.status_code == 202
        assert deliver(system) == 2
        by_to = {m["To"].addresses[0].addr_spec: m for m in relay[0].messages()}
        assert (
            by_to["en@example.org"]["Subject"]
            == f"[TEST] {MARK} Sale 12: Le Petit Prince (édition 1999)"
        )
        assert MARK not in by_to["fr@example.org"]["Subject"]

    def test_with_a_real_sale(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller = factories.seller(api, name="Bouquinerie Martin")
        sale_id = factories.order(api, seller["id"])["sales"][0]["id"]
        deliver(system)
        before = len(relay[0].messages())
        response = api.post(
            f"{URL}/buyer_sale_accepted/fr/test-send",
            json={"to": "qa@example.org", "sale_id": sale_id},
        )
        assert response.status_code == 202
        assert deliver(system) == 1
        [mail] = relay[0].messages()[before:]
        assert "Bouquinerie Martin" in text_of(mail)


@pytest.fixture
def templates_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "templates"
    shutil.copytree(templates_root(), copy)
    return copy


ADDED = "Nouveauté : pensez à mettre votre stock à jour.\n"


class TestDrift:
    def test_a_changed_default_is_shown_with_its_diff(
        self,
        api: TestClient,
        system: System,
        db_url: str,
        relay: tuple[RelayHandler, int],
        clock: MovableClock,
        templates_copy: Path,
    ) -> None:
        version = _draft(api, "seller_new_sale", "fr", NEW_SALE)
        _publish(api, "seller_new_sale", "fr", version)
        en_version = _draft(api, "seller_new_sale", "en", NEW_SALE_EN)
        _publish(api, "seller_new_sale", "en", en_version)
        assert not _listed(api, "seller_new_sale", "fr")["default_changed"]
        unchanged = api.get(f"{URL}/seller_new_sale/fr/diff/{version}").json()
        assert unchanged["default_changed"] is False
        assert unchanged["diff"] == {"subject": "", "text": "", "html": ""}

        # A new release changes the shipped French text of the key.
        path = templates_copy / "email" / "fr" / "seller_new_sale.txt.j2"
        old = path.read_text(encoding="utf-8")
        assert "{% block body %}\n" in old
        path.write_text(old.replace("{% block body %}\n", "{% block body %}\n" + ADDED, 1), "utf-8")

        release = build(make_settings(db_url, relay[1]), clock=clock, templates=templates_copy)
        try:
            with TestClient(create_app(release), base_url="http://mailflow.test") as client:
                client.headers["Authorization"] = f"Bearer {API_TOKEN}"
                self._check_drift(client, release, relay[0], version)
        finally:
            release.close()

        # Seen from the old release, the version saved under the new one was edited from a
        # default other than the one it ships: that is drift too.
        assert _listed(api, "seller_new_sale", "fr")["default_changed"]

    def _check_drift(
        self, client: TestClient, release: System, relay: RelayHandler, version: int
    ) -> None:
        rows = client.get(URL).json()
        changed = {(r["key"], r["locale"]) for r in rows if r["default_changed"]}
        assert changed == {("seller_new_sale", "fr")}
        shown = client.get(f"{URL}/seller_new_sale/fr").json()
        assert shown["default_changed"] is True and shown["version"] == version
        assert client.get(f"{URL}/seller_new_sale/en").json()["default_changed"] is False

        diff = client.get(f"{URL}/seller_new_sale/fr/diff/{version}")
        assert diff.status_code == 200
        body = diff.json()
        assert body["default_changed"] is True
        assert body["diff"]["subject"] == "" and body["diff"]["html"] == ""
        assert "+" + ADDED in body["diff"]["text"]
        assert not any(
            line.startswith("-") and not line.startswith("---")
            for line in body["diff"]["text"].splitlines()
        )

        # The published edit still goes out; a version saved from the new default, once
        # published, has no drift.
        seller = factories.seller(client)
        _, mail = _new_sale_mail(client, release, relay, seller["id"])
        assert mail["Subject"].startswith(MARK)
        fresh = _draft(client, "seller_new_sale", "fr", NEW_SALE)
        _publish(client, "seller_new_sale", "fr", fresh)
        assert not _listed(client, "seller_new_sale", "fr")["default_changed"]
        assert client.get(f"{URL}/seller_new_sale/fr/diff/{version}").json()["default_changed"]


class TestLocale:
    def test_the_recipients_locale_picks_the_set(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        _publish(api, "seller_new_sale", "en", _draft(api, "seller_new_sale", "en", NEW_SALE_EN))
        assert _listed(api, "seller_new_sale", "en")["published_version"] == 1
        assert _listed(api, "seller_new_sale", "fr")["published_version"] == 0
        english = factories.seller(api, locale="en")
        french = factories.seller(api, locale="fr")
        en_sale, en_mail = _new_sale_mail(api, system, relay[0], english["id"])
        fr_sale, fr_mail = _new_sale_mail(api, system, relay[0], french["id"])
        assert en_mail["Subject"] == f"{MARK} Sale {en_sale}: Le Petit Prince"
        assert text_of(en_mail).startswith(f"Hello {english['name']},\nMontant : €12.50\n")
        assert MARK not in fr_mail["Subject"]
        assert "12,50\u00a0€" in text_of(fr_mail)
        assert (
            fr_mail["Subject"]
            == api.post(f"{URL}/seller_new_sale/fr/preview", json={"sale_id": fr_sale}).json()[
                "subject"
            ]
        )


UNKNOWN = ["/no_such_key/fr", "/seller_new_sale/de"]
BAD_BODIES: list[tuple[str, str, dict[str, Any], str]] = [
    ("PUT", "", {"subject": "x", "text": "y"}, "html"),
    ("PUT", "", {"subject": 3, "text": "y", "html": "z"}, "subject"),
    ("PUT", "", {**NEW_SALE, "author": "me"}, "author"),
    ("PUT", "", {**NEW_SALE, "text": "x" * 200_001}, "text"),
    ("POST", "/publish", {}, "version"),
    ("POST", "/publish", {"version": -1}, "version"),
    ("POST", "/rollback", {"version": "latest"}, "version"),
    ("POST", "/preview", {"sale_id": 0}, "sale_id"),
    ("POST", "/preview", {"sale_id": 999_999}, "sale_id"),
    ("POST", "/preview", {"html": ["<p>"]}, "html"),
    ("POST", "/test-send", {}, "to"),
    ("POST", "/test-send", {"to": "not an address"}, "to"),
    ("POST", "/test-send", {"to": "qa@example.org", "sale_id": 999_999}, "sale_id"),
]


class TestErrors:
    def test_unknown_key_or_locale_is_404(self, api: TestClient) -> None:
        for where in UNKNOWN:
            self._all_404(api, where)

    def _all_404(self, api: TestClient, where: str) -> None:
        base = URL + where
        assert api.get(base).status_code == 404
        assert _put(api, *where.strip("/").split("/"), **NEW_SALE).status_code == 404
        for tail, body in (
            ("/publish", {"version": 0}),
            ("/rollback", {"version": 0}),
            ("/preview", {}),
            ("/test-send", {"to": "qa@example.org"}),
        ):
            response = api.post(base + tail, json=body)
            assert response.status_code == 404, (tail, response.text)
            assert response.json()["error"] == "not_found"
        assert api.get(base + "/diff/1").status_code == 404

    def test_bad_bodies_are_422_naming_the_field(self, api: TestClient) -> None:
        for method, tail, body, field in BAD_BODIES:
            response = api.request(method, f"{URL}/seller_new_sale/fr{tail}", json=body)
            assert response.status_code == 422, (tail, body, response.text)
            fields = [d["field"] for d in response.json()["detail"]]
            assert field in fields, (tail, body, fields)
        assert _show(api, "seller_new_sale", "fr")["drafts"] == []
        assert _listed(api, "seller_new_sale", "fr")["published_version"] == 0

    def test_diff_of_version_0_is_422(self, api: TestClient) -> None:
        response = api.get(f"{URL}/seller_new_sale/fr/diff/0")
        assert response.status_code == 422
        assert [d["field"] for d in response.json()["detail"]] == ["version"]

    def test_no_or_wrong_token_is_401_and_changes_nothing(
        self, api: TestClient, web: TestClient, system: System
    ) -> None:
        self._all_401(web, {})  # no Authorization header at all
        for value in ("", "Bearer", "Bearer wrong-token", f"Basic {API_TOKEN}"):
            self._all_401(api, {"Authorization": value})
        assert _show(api, "seller_new_sale", "fr")["drafts"] == []
        with system.db.read() as session:
            queued = session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one()
        assert queued == 0

    def _all_401(self, api: TestClient, headers: dict[str, str]) -> None:
        for method, tail, body in (
            ("GET", "", None),
            ("PUT", "/seller_new_sale/fr", NEW_SALE),
            ("GET", "/seller_new_sale/fr", None),
            ("POST", "/seller_new_sale/fr/publish", {"version": 1}),
            ("POST", "/seller_new_sale/fr/rollback", {"version": 0}),
            ("POST", "/seller_new_sale/fr/preview", {}),
            ("POST", "/seller_new_sale/fr/test-send", {"to": "qa@example.org"}),
            ("GET", "/seller_new_sale/fr/diff/1", None),
        ):
            response = api.request(method, URL + tail, json=body, headers=headers)
            assert response.status_code == 401, (method, tail)
            assert response.headers["WWW-Authenticate"] == "Bearer"
