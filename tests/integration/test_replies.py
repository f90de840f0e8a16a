"""Replies by email, end to end: the order emails carry a Reply-To into the sale's
conversation; a reply goes through the real inbound SMTP server (smtplib over loopback), the
sender check, the new text, and reaches the other party through the relay, on SQLite and
PostgreSQL. SPEC §7 "Replies", line by line.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.bootstrap import System
from mailflow.store.models import InboundMessage, OutboxMessage
from tests import factories
from tests.inbound_support import handled
from tests.inbound_support import inbound_server as serving
from tests.support import Received, RelayHandler, deliver

DOMAIN = "reply.market.example"
AUTHSERV = "mx.market.example"

pytestmark = pytest.mark.postgres


@pytest.fixture
def system(db_url: str, make_system: Callable[..., System]) -> System:
    return make_system(db_url, inbound={"enabled": True, "domain": DOMAIN, "authserv_id": AUTHSERV})


@contextmanager
def inbound_server(system: System) -> Iterator[int]:
    """The real inbound SMTP server and its processor on a loopback port."""
    with serving(system, timeout_seconds=10) as (_server, port):
        yield port


@pytest.fixture
def inbound(system: System) -> Iterator[int]:
    with inbound_server(system) as port:
        yield port


@pytest.fixture
def patient(system: System) -> Iterator[int]:
    """The inbound server without its error limits, for the property test: its random input
    is answered 500 (a line too long) as often as it comes."""
    limits = {"timeout_seconds": 10, "hard_errors": 1_000_000, "error_delay_seconds": 0.0}
    with serving(system, **limits) as (_server, port):
        yield port


# --- helpers ---------------------------------------------------------------------------------


def _sale(api: TestClient, locale: str = "fr") -> tuple[dict[str, Any], dict[str, Any], int]:
    seller = factories.seller(api, locale=locale)
    body = factories.order_body(seller["id"])
    body["buyer"]["locale"] = locale
    response = api.post("/api/v1/orders", json=body)
    assert response.status_code == 201, response.text
    return seller, body["buyer"], response.json()["sales"][0]["id"]


def _delivered(system: System, relay: RelayHandler, key: str, to: str) -> EmailMessage:
    deliver(system)
    found = [m for m in relay.messages() if m["X-Mailflow-Template"] == key and to in str(m["To"])]
    assert found, [(m["X-Mailflow-Template"], m["To"]) for m in relay.messages()]
    return found[-1]


def _received(relay: RelayHandler, key: str) -> Received:
    """The last message of kind ``key`` the relay received, as it came over SMTP."""
    found = [r for r in relay.received if r.message["X-Mailflow-Template"] == key]
    assert found, key
    return found[-1]


def _reply(
    to: str,
    sender: str,
    text: str,
    *,
    subject: str = "Re: Nouvelle vente",
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="mail.example")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    return message


def _send(
    port: int, message: EmailMessage | bytes, to: str, mail_from: str = "x@mail.example"
) -> None:
    if isinstance(message, EmailMessage):
        message = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    raw = message
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        refused = smtp.sendmail(mail_from, [to], raw)
    assert refused == {}
    handled(port)


def _verdicts(system: System) -> list[tuple[str, str]]:
    with system.db.read() as tx:
        rows = tx.execute(
            select(InboundMessage.verdict, InboundMessage.reason)  # type: ignore[call-overload]
            .where(InboundMessage.kind == "reply")
            .order_by(InboundMessage.id)
        ).all()
    return [(row[0], row[1]) for row in rows]


def _outbox_keys(system: System) -> list[str]:
    with system.db.read() as tx:
        return list(
            tx.execute(select(OutboxMessage.template).order_by(OutboxMessage.id)).scalars()  # type: ignore[call-overload]
        )


def _messages(api: TestClient, sale_id: int) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/sales/{sale_id}/messages")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


GMAIL_FR = (
    "Bonjour,\n\nJe vous l'envoie demain matin en lettre suivie.\n\n"
    "Cordialement,\nJean\n\n"
    "Le jeu. 26 nov. 2026 à 14:30, Marketplace <\n{reply_to}> a écrit :\n\n"
    "> Bonjour,\n> Vous avez vendu un article.\n> --\n> Marketplace\n"
)
OUTLOOK_EN = (
    "Could you send it to a parcel locker instead?\n\n-- \nEloise\n\n"
    "________________________________\nFrom: Marketplace <no-reply@marketplace.example>\n"
    "Sent: Thursday, November 26, 2026 2:30 PM\nTo: Buyer\nSubject: Sale accepted\n\nHello,\n"
)


# --- the addresses ---------------------------------------------------------------------------


def test_order_emails_carry_a_reply_address_and_say_they_are_automatic(
    api: TestClient, system: System, relay: tuple[RelayHandler, int]
) -> None:
    seller, buyer, sale_id = _sale(api)
    email = _delivered(system, relay[0], "seller_new_sale", seller["email"])
    reply_to = str(email["Reply-To"])
    local, _, domain = reply_to.partition("@")
    assert domain == DOMAIN and local.startswith("reply+") and len(local) <= 64
    assert reply_to == reply_to.lower()
    assert email["Auto-Submitted"] == "auto-generated"
    assert email["X-Auto-Response-Suppress"] == "All"
    assert "REFUSER" in email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # The buyer's notices invite an answer too; customer service's do not.
    assert api.post(f"/api/v1/sales/{sale_id}/accept").status_code == 200
    accepted = _delivered(system, relay[0], "buyer_sale_accepted", buyer["email"])
    assert str(accepted["Reply-To"]).startswith("reply+")
    assert str(accepted["Reply-To"]) != reply_to


# --- a seller's reply reaches the buyer ---------------------------------------------------------


def test_a_sellers_french_reply_reaches_the_buyer_with_only_the_new_text(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    seller, buyer, sale_id = _sale(api)
    order_email = _delivered(system, relay[0], "seller_new_sale", seller["email"])
    reply_to = str(order_email["Reply-To"])
    # An MTA that lowercases the local part, and a seller whose mail program upper-cases
    # the address: both still match.
    sender = f"Jean <{seller['email'].upper()}>"
    _send(inbound, _reply(reply_to.lower(), sender, GMAIL_FR.format(reply_to=reply_to)), reply_to)

    assert _verdicts(system) == [("relayed", "")]
    relayed = _delivered(system, relay[0], "buyer_seller_message", buyer["email"])
    text = relayed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Je vous l'envoie demain matin en lettre suivie." in text
    assert "Cordialement" not in text and "a écrit" not in text and "Vous avez vendu" not in text
    raw = _received(relay[0], "buyer_seller_message").raw.decode("ascii", "replace").lower()
    assert seller["email"].lower() not in raw
    buyer_reply_to = str(relayed["Reply-To"])
    assert buyer_reply_to.startswith("reply+") and buyer_reply_to != reply_to

    [message] = _messages(api, sale_id)
    assert message["from"] == "seller" and message["status"] == "relayed"
    assert message["body"] == "Bonjour,\n\nJe vous l'envoie demain matin en lettre suivie."

    # The buyer answers (Outlook, English): the seller gets it, without the buyer's address.
    _send(inbound, _reply(buyer_reply_to, buyer["email"], OUTLOOK_EN), buyer_reply_to)
    to_seller = _delivered(system, relay[0], "seller_buyer_message", seller["email"])
    text = to_seller.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Could you send it to a parcel locker instead?" in text
    assert "Eloise" not in text and "Sent:" not in text
    raw = _received(relay[0], "seller_buyer_message").raw.decode("ascii", "replace").lower()
    assert buyer["email"].lower() not in raw
    conversation = _messages(api, sale_id)
    assert [m["from"] for m in conversation] == ["seller", "buyer"]
    assert conversation[1]["body"] == "Could you send it to a parcel locker instead?"


def test_an_html_only_outlook_reply_in_french_is_relayed_as_its_text(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    seller, buyer, sale_id = _sale(api)
    reply_to = str(_delivered(system, relay[0], "seller_new_sale", seller["email"])["Reply-To"])
    message = _reply(reply_to, seller["email"], "")
    message.set_content(
        "<html><body><div>Bonjour,</div><div>Colis posté ce matin &amp; suivi.</div>"
        "<div>Cordialement,<br>Jean</div>"
        '<hr id="stopSpelling"><div id="divRplyFwdMsg"><b>De :</b> Marketplace<br>'
        "<b>Envoyé :</b> jeudi 26 novembre 2026 14:30<br><b>Objet :</b> Nouvelle vente</div>"
        "<div>Bonjour Jean, vous avez vendu un article.</div></body></html>",
        subtype="html",
    )
    _send(inbound, message, reply_to)
    [relayed] = _messages(api, sale_id)
    assert relayed["body"] == "Bonjour,\nColis posté ce matin & suivi."
    email = _delivered(system, relay[0], "buyer_seller_message", buyer["email"])
    assert "Colis posté ce matin & suivi." in email.get_body(("plain",)).get_content()  # type: ignore[union-attr]


# --- what changes nothing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("forged", "sender_mismatch"),
        ("third_party_cc", "sender_mismatch"),
        ("dmarc_fail", "dmarc_fail"),
        ("two_from", "no_from"),
    ],
)
def test_a_reply_failing_the_sender_check_is_rejected_and_sends_nothing(
    api: TestClient,
    system: System,
    relay: tuple[RelayHandler, int],
    inbound: int,
    case: str,
    reason: str,
) -> None:
    seller, _buyer, sale_id = _sale(api)
    reply_to = str(_delivered(system, relay[0], "seller_new_sale", seller["email"])["Reply-To"])
    before = _outbox_keys(system)
    headers: dict[str, str] = {}
    sender = seller["email"]
    if case == "forged":
        sender = "attacker@evil.example"
    elif case == "third_party_cc":
        # The seller had CC'd an accountant, who answers the thread with the same token.
        sender = "comptable@cabinet.example"
        headers["Cc"] = seller["email"]
    elif case == "dmarc_fail":
        headers["Authentication-Results"] = (
            f"{AUTHSERV}; spf=fail smtp.mailfrom=shop.example; dmarc=fail (p=reject) "
            "header.from=shop.example"
        )
    message: EmailMessage | bytes = _reply(reply_to, sender, "REFUSER", headers=headers)
    if case == "two_from":
        message = b"From: attacker@evil.example\r\n" + message.as_bytes(  # type: ignore[union-attr]
            policy=message.policy.clone(linesep="\r\n")  # type: ignore[union-attr]
        )
    _send(inbound, message, reply_to)

    assert _verdicts(system) == [("rejected", reason)]
    assert _outbox_keys(system) == before
    assert api.get(f"/api/v1/sales/{sale_id}").json()["status"] == "pending"
    assert _messages(api, sale_id) == []


STRICT = {"enabled": True, "domain": DOMAIN, "authserv_id": AUTHSERV, "require_dmarc": True}
"""``[inbound]`` with ``require_dmarc``."""


@contextmanager
def serving_strictly(strict: System, api: TestClient) -> Iterator[tuple[TestClient, int]]:
    """The API of ``strict`` (with ``api``'s token) and its inbound server's port."""
    from mailflow.web.app import create_app

    with (
        TestClient(create_app(strict), base_url="http://mailflow.test") as client,
        inbound_server(strict) as port,
    ):
        client.headers["Authorization"] = api.headers["Authorization"]
        yield client, port


def test_a_verdict_from_an_untrusted_peer_or_another_authserv_id_is_not_read(
    api: TestClient,
    make_system: Callable[..., System],
    db_url: str,
    relay: tuple[RelayHandler, int],
) -> None:
    strict = make_system(db_url, inbound={**STRICT, "trusted_relays": ["192.0.2.0/24"]})
    with serving_strictly(strict, api) as (client, port):
        seller, _buyer, sale_id = _sale(client)
        reply_to = str(_delivered(strict, relay[0], "seller_new_sale", seller["email"])["Reply-To"])
        # A pass written by the loopback peer, which is not a trusted relay here.
        passed = {"Authentication-Results": f"{AUTHSERV}; dmarc=pass header.from=shop.example"}
        _send(port, _reply(reply_to, seller["email"], "REFUSER", headers=passed), reply_to)
        assert _verdicts(strict) == [("rejected", "dmarc_missing")]
        assert client.get(f"/api/v1/sales/{sale_id}").json()["status"] == "pending"


def test_with_require_dmarc_a_trusted_pass_is_needed_and_enough(
    api: TestClient,
    make_system: Callable[..., System],
    db_url: str,
    relay: tuple[RelayHandler, int],
) -> None:
    strict = make_system(db_url, inbound=STRICT)
    with serving_strictly(strict, api) as (client, port):
        seller, _buyer, sale_id = _sale(client)
        reply_to = str(_delivered(strict, relay[0], "seller_new_sale", seller["email"])["Reply-To"])
        _send(port, _reply(reply_to, seller["email"], "Bonjour"), reply_to)
        other = {"Authentication-Results": "other.example; dmarc=pass header.from=x"}
        _send(port, _reply(reply_to, seller["email"], "Bonjour", headers=other), reply_to)
        passed = {
            "Authentication-Results": f"{AUTHSERV}; spf=pass (sender ok) smtp.mailfrom=x; "
            "dkim=pass header.d=shop.example; dmarc=pass (p=none) header.from=shop.example"
        }
        _send(port, _reply(reply_to, seller["email"], "Bonjour", headers=passed), reply_to)
        assert _verdicts(strict) == [
            ("rejected", "dmarc_missing"),
            ("rejected", "dmarc_missing"),
            ("relayed", ""),
        ]
        assert len(client.get(f"/api/v1/sales/{sale_id}/messages").json()) == 1


@pytest.mark.parametrize(
    "automatic",
    [
        {"Auto-Submitted": "auto-replied"},
        {"X-Autoreply": "yes"},
        {"Precedence": "bulk"},
        {"List-Id": "<sellers.list.example>"},
        "empty envelope sender",
    ],
)
def test_an_auto_reply_is_ignored(
    api: TestClient,
    system: System,
    relay: tuple[RelayHandler, int],
    inbound: int,
    automatic: dict[str, str] | str,
) -> None:
    seller, _buyer, sale_id = _sale(api)
    reply_to = str(_delivered(system, relay[0], "seller_new_sale", seller["email"])["Reply-To"])
    before = _outbox_keys(system)
    headers = automatic if isinstance(automatic, dict) else {}
    message = _reply(reply_to, seller["email"], "REFUSER\n\nJe suis absent.", headers=headers)
    _send(inbound, message, reply_to, mail_from="" if isinstance(automatic, str) else "x@y.example")
    [(verdict, _reason)] = _verdicts(system)
    assert verdict == "ignored"
    assert _outbox_keys(system) == before
    assert api.get(f"/api/v1/sales/{sale_id}").json()["status"] == "pending"


# --- email commands ------------------------------------------------------------------------------


def test_refuser_refuses_once_even_delivered_twice_and_answers_the_seller(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    seller, buyer, sale_id = _sale(api)
    reply_to = str(_delivered(system, relay[0], "seller_new_sale", seller["email"])["Reply-To"])
    message = _reply(
        reply_to, seller["email"], "Refusér\n\nLe 26 nov. 2026, Marketplace a écrit :\n> Nouvelle"
    )
    _send(inbound, message, reply_to)
    _send(inbound, message, reply_to)  # the same email, delivered again

    sale = api.get(f"/api/v1/sales/{sale_id}").json()
    assert sale["status"] == "refused"
    [refusal] = [e for e in sale["events"] if e["action"] == "refuse"]
    assert (refusal["actor"], refusal["channel"]) == ("seller", "email-reply")
    assert _verdicts(system) == [("command", ""), ("duplicate", "")]
    with system.db.read() as tx:
        became = tx.execute(
            select(InboundMessage.became).order_by(InboundMessage.id)  # type: ignore[call-overload]
        ).scalars()
        assert list(became)[-2:] == ["email command, refuse: done", "already received"]
    deliver(system)
    keys = [m["X-Mailflow-Template"] for m in relay[0].messages()]
    assert keys.count("seller_command_result") == 1
    assert keys.count("buyer_sale_refused") == 1
    assert "buyer_seller_message" not in keys  # a command never reaches the buyer
    result = _delivered(system, relay[0], "seller_command_result", seller["email"])
    assert "refusée" in str(result["Subject"])
    assert result["Reply-To"] is None
    [message_row] = _messages(api, sale_id)
    assert message_row["status"] == "command"
    assert buyer["email"]


def test_accepter_on_a_refused_sale_answers_why_not(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    seller, _buyer, sale_id = _sale(api, locale="en")
    reply_to = str(_delivered(system, relay[0], "seller_new_sale", seller["email"])["Reply-To"])
    assert api.post(f"/api/v1/sales/{sale_id}/refuse").status_code == 200
    _send(inbound, _reply(reply_to, seller["email"], "ACCEPT"), reply_to)
    assert api.get(f"/api/v1/sales/{sale_id}").json()["status"] == "refused"
    result = _delivered(system, relay[0], "seller_command_result", seller["email"])
    text = result.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "could not be carried out" in text and "is refused" in text


def test_a_command_in_a_reply_to_another_email_is_only_a_message(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    seller, buyer, sale_id = _sale(api)
    assert api.post(f"/api/v1/sales/{sale_id}/accept").status_code == 200
    _delivered(system, relay[0], "buyer_sale_accepted", buyer["email"])
    # The seller answers the buyer's relayed message: that address takes no command.
    api.post(f"/api/v1/sales/{sale_id}/cancel", json={"reason": "other", "message": "Désolé"})
    cancelled = _delivered(system, relay[0], "seller_sale_cancelled", seller["email"])
    reply_to = str(cancelled["Reply-To"])
    _send(inbound, _reply(reply_to, seller["email"], "ACCEPTER"), reply_to)
    assert _verdicts(system) == [("relayed", "")]
    assert api.get(f"/api/v1/sales/{sale_id}").json()["status"] == "cancelled"


# --- header injection (CVE-2024-6923) ------------------------------------------------------------


def test_newlines_in_inbound_headers_never_reach_the_relayed_email(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    seller, buyer, _sale_id = _sale(api)
    reply_to = str(_delivered(system, relay[0], "seller_new_sale", seller["email"])["Reply-To"])
    raw = (
        f"From: =?utf-8?q?Jean=0D=0ABcc:_victim@evil.example?= <{seller['email']}>\r\n"
        f"To: {reply_to}\r\n"
        "Subject: =?utf-8?q?Re:_x=0ABcc:_victim2@evil.example?=\r\n"
        f"Message-ID: {make_msgid(domain='mail.example')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Bien reçu, je prépare le colis.\r\n"
    ).encode()
    _send(inbound, raw, reply_to)
    assert _verdicts(system) == [("relayed", "")]
    relayed = _delivered(system, relay[0], "buyer_seller_message", buyer["email"])
    received = _received(relay[0], "buyer_seller_message")
    assert received.rcpt_tos == [buyer["email"]]
    assert relayed["Bcc"] is None and relayed["Cc"] is None
    head = received.raw.split(b"\r\n\r\n", 1)[0].decode("ascii").lower()
    assert "evil.example" not in head and "victim" not in head


# --- the conversation ----------------------------------------------------------------------------


def test_the_messages_api_is_typed_and_answers_404_and_401(api: TestClient, system: System) -> None:
    assert api.get("/api/v1/sales/999999/messages").status_code == 404
    assert api.get("/api/v1/sales/0/messages").status_code == 422
    anonymous = api.get("/api/v1/sales/1/messages", headers={"Authorization": "Bearer wrong"})
    assert anonymous.status_code == 401
    schema = api.get("/openapi.json").json()
    route = schema["paths"]["/api/v1/sales/{sale_id}/messages"]["get"]
    assert {"200", "401", "404", "422"} <= set(route["responses"])


def test_random_bytes_to_a_reply_address_never_fail_the_server(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], patient: int
) -> None:
    """Property: whatever follows a seller's own From header, the real server keeps the
    message (or refuses a line too long) and goes on serving; never a 451 (a failure to
    keep), and every verdict is one of the reply kind's."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    seller, _buyer, sale_id = _sale(api)
    reply_to = str(_delivered(system, relay[0], "seller_new_sale", seller["email"])["Reply-To"])
    head = f"From: {seller['email']}\r\n".encode()
    with smtplib.SMTP("127.0.0.1", patient, timeout=10) as client:
        client.ehlo("relay.example")

        @settings(
            max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(
            st.sampled_from([b"", b"Content-Type: text/html\r\n", b"\r\n"]),
            st.binary(max_size=1500) | st.text(max_size=400).map(lambda t: t.encode()),
        )
        def one_message(headers: bytes, body: bytes) -> None:
            assert client.mail("someone@mail.example")[0] == 250
            assert client.rcpt(reply_to)[0] == 250
            code, reply = client.data(head + headers + body)
            assert code in (250, 500), reply
            if code != 250:
                client.rset()
            assert client.noop()[0] == 250

        one_message()
    handled(patient)
    verdicts = {verdict for verdict, _ in _verdicts(system)}
    assert verdicts <= {"relayed", "command", "empty", "duplicate", "rejected", "ignored"}
    assert api.get(f"/api/v1/sales/{sale_id}/messages").status_code == 200
