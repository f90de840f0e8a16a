"""Which email each sale event sends, to whom, with what: through the real dispatcher and
``notify`` handlers, with a recording outbox and in-memory stores (no database, no SMTP)."""

from __future__ import annotations

import typing
from datetime import timedelta

import pytest

from mailflow.domain import events
from mailflow.domain.events import DeadlineNear, SaleCreated, SaleTransitioned
from mailflow.domain.policy import Counts
from mailflow.domain.sales import Action, Actor, Channel, SaleStatus
from mailflow.mail.catalog import KINDS
from mailflow.services.dispatch import HANDLERS, dispatch
from mailflow.store.records import (
    BuyerRecord,
    OrderRecord,
    PaymentRecord,
    SaleFacts,
    SaleRecord,
)
from tests import fakes
from tests.fakes import NOW

TX = fakes.FakeTransaction()


def facts(status: str = "pending", payment: str = "authorized", **sale: object) -> SaleFacts:
    created = NOW - timedelta(hours=3)
    fields: dict[str, typing.Any] = {
        "id": 12,
        "order_id": 3,
        "seller_id": 7,
        "listing_id": 5,
        "sku": "LPP-1943",
        "title": "Le Petit Prince",
        "quantity": 2,
        "unit_price_cents": 625,
        "amount_cents": 1250,
        "currency": "EUR",
        "status": status,
        "reason": None,
        "message": None,
        "created_at": created,
        "updated_at": NOW,
        **sale,
    }
    return SaleFacts(
        SaleRecord(**fields),
        fakes.seller(locale="en"),
        OrderRecord(3, "CMD-42", 4),
        BuyerRecord(4, "Éloïse Müller", "eloise@example.org", "fr"),
        PaymentRecord(12, payment, 1250, 0, 0, 0, "EUR", NOW),
    )


def transitioned(action: Action, target: SaleStatus, **kw: typing.Any) -> SaleTransitioned:
    return SaleTransitioned(
        12, action, SaleStatus.PENDING, target, Actor.SELLER, Channel.EMAIL_LINK, NOW, **kw
    )


class TestEveryEventHasItsHandlers:
    def test_every_event_type_is_in_the_table(self) -> None:
        assert set(typing.get_args(events.Event)) == set(HANDLERS)

    def test_every_email_a_handler_can_send_is_a_known_kind(self) -> None:
        f = fakes.make()
        dispatch(f.ctx, TX, [SaleCreated(12, NOW), DeadlineNear(12, NOW)], facts())
        assert set(f.outbox.keys) <= set(KINDS)


class TestSaleCreated:
    def test_the_seller_gets_the_order_email_with_its_three_links(self) -> None:
        f = fakes.make()
        dispatch(f.ctx, TX, [SaleCreated(12, NOW)], facts())
        [sent] = f.outbox.sent
        assert sent.key == "seller_new_sale"
        assert (sent.to.email, sent.to.locale) == ("ventes@librairie-dupont.example", "en")
        assert sent.sale_id == 12
        links = sent.context["links"]
        for action in ("accept", "refuse", "view"):
            link = f.ctx.signer.verify_sale_token(links[action].rsplit("/s/", 1)[1])
            assert (link.sale_id, link.action) == (12, action)
        deadline = NOW - timedelta(hours=3) + timedelta(hours=48)
        assert sent.context["sale"]["deadline"] == deadline
        assert set(sent.context) == set(KINDS["seller_new_sale"].variables)


class TestDeadlineNear:
    def test_the_seller_gets_one_reminder(self) -> None:
        f = fakes.make()
        dispatch(f.ctx, TX, [DeadlineNear(12, NOW)], facts())
        assert f.outbox.keys == ["seller_deadline_reminder"]
        assert f.outbox.sent[0].to.email == "ventes@librairie-dupont.example"


class TestSaleTransitioned:
    @pytest.mark.parametrize(
        ("action", "target", "key"),
        [
            (Action.ACCEPT, SaleStatus.ACCEPTED, "buyer_sale_accepted"),
            (Action.REFUSE, SaleStatus.REFUSED, "buyer_sale_refused"),
            (Action.EXPIRE, SaleStatus.EXPIRED, "buyer_sale_expired"),
            (Action.WITHDRAW, SaleStatus.WITHDRAWN, "buyer_withdrawal_confirmed"),
        ],
    )
    def test_the_buyer_alone_hears_of_it(
        self, action: Action, target: SaleStatus, key: str
    ) -> None:
        f = fakes.make()
        dispatch(f.ctx, TX, [transitioned(action, target)], facts(target.value))
        [sent] = f.outbox.sent
        assert (sent.key, sent.to.email, sent.to.locale) == (key, "eloise@example.org", "fr")
        assert sent.context["event"] == {"actor": "seller", "channel": "email-link", "at": NOW}
        assert set(sent.context) == set(KINDS[key].variables)

    def test_shipping_sends_nothing(self) -> None:
        f = fakes.make()
        dispatch(f.ctx, TX, [transitioned(Action.SHIP, SaleStatus.SHIPPED)], facts("shipped"))
        assert f.outbox.sent == []

    def test_a_cancellation_tells_buyer_support_and_seller_with_the_rate(self) -> None:
        f = fakes.make()
        f.standings.window[7] = Counts(total=25, cancelled=1, withdrawn=1)
        about = facts("cancelled", "refunded", reason="cannot_ship", message="Désolé")
        event = transitioned(Action.CANCEL, SaleStatus.CANCELLED, reason="cannot_ship")
        dispatch(f.ctx, TX, [event], about)
        assert [(q.key, q.to.email, q.to.locale) for q in f.outbox.sent] == [
            ("buyer_sale_cancelled", "eloise@example.org", "fr"),
            ("support_sale_cancelled", "support@market.example", "fr"),
            ("seller_sale_cancelled", "ventes@librairie-dupont.example", "en"),
        ]
        rate = f.outbox.sent[2].context["rate"]
        assert (rate["value"], rate["counted"], rate["threshold"]) == (1 / 24, 24, 0.05)
        assert f.outbox.sent[0].context["sale"]["message"] == "Désolé"

    def test_what_notify_sends_renders_with_the_shipped_templates(self) -> None:
        f = fakes.make()
        dispatch(f.ctx, TX, [SaleCreated(12, NOW)], facts())
        dispatch(f.ctx, TX, [transitioned(Action.ACCEPT, SaleStatus.ACCEPTED)], facts("accepted"))
        for sent in f.outbox.sent:
            email = f.ctx.renderer.render(sent.key, sent.to.locale, sent.context)
            assert "Le Petit Prince" in email.text
