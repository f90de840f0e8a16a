"""The inbound SMTP server over real SMTP: bounces of real deliveries, the suppression list,
the conversation's refusals and limits, hostile input.

Everything is real: orders come in through the API, the delivery worker sends to an aiosmtpd
relay on loopback with the VERP return path, and DSNs go back to mailflow's own inbound server
with smtplib (or a raw socket, for what smtplib would not send), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import smtplib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import parseaddr
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.bootstrap import System
from mailflow.store.models import InboundMessage, OutboxAttempt, OutboxMessage, Suppression
from tests import factories
from tests.inbound_support import dsn, handled, inbound_server
from tests.support import RelayHandler, deliver

pytestmark = pytest.mark.postgres

DOMAIN = "bounces.test"
UNREACHABLE = "support_seller_unreachable"


@pytest.fixture
def system(db_url: str, make_system: Callable[..., System]) -> System:
    return make_system(db_url, inbound={"enabled": True, "domain": DOMAIN})


@pytest.fixture
def inbound(system: System) -> Iterator[int]:
    with inbound_server(system) as (_server, port):
        yield port


@pytest.fixture
def patient(system: System) -> Iterator[int]:
    """The inbound server without its error limits, for the property tests: their random
    input is answered 500 (a line too long) as often as it comes."""
    with inbound_server(system, hard_errors=1_000_000, error_delay_seconds=0.0) as (_, port):
        yield port


# -- helpers --------------------------------------------------------------------------------


def outbox(system: System) -> list[OutboxMessage]:
    with system.db.read() as session:
        return list(session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


def received(system: System) -> list[InboundMessage]:
    with system.db.read() as session:
        return list(session.execute(select(InboundMessage).order_by(InboundMessage.id)).scalars())


def suppressed(system: System) -> list[str]:
    with system.db.read() as session:
        return list(session.execute(select(Suppression.email)).scalars())


def attempts(system: System, row_id: int) -> list[tuple[str, str]]:
    with system.db.read() as session:
        rows = session.execute(
            select(OutboxAttempt.outcome, OutboxAttempt.detail).where(
                OutboxAttempt.message_id == row_id
            )
        ).all()
    return [(outcome, detail) for outcome, detail in rows]


def of_template(system: System, template: str) -> list[OutboxMessage]:
    return [row for row in outbox(system) if row.template == template]


def sent_order(
    api: TestClient, system: System, relay: RelayHandler, **seller: Any
) -> tuple[dict[str, Any], int, str, str]:
    """A new sale whose order email was delivered: the seller, the sale id, the envelope
    sender the relay saw (the VERP address) and the seller's address."""
    who = factories.seller(api, **seller)
    sale_id = factories.order(api, who["id"])["sales"][0]["id"]
    before = len(relay.received)
    deliver(system)
    mail = relay.received[before]
    return who, sale_id, mail.mail_from, mail.rcpt_tos[0]


def send(port: int, to: str, data: bytes, mail_from: str = "") -> tuple[int, bytes]:
    """One message over SMTP; the reply to DATA, once the message has been handled."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("relay.example")
        client.mail(mail_from)
        code, reply = client.rcpt(to)
        assert code == 250, reply
        answer = client.data(data)
    handled(port)
    return answer


def bounce(port: int, verp: str, recipient: str, **dsn_fields: Any) -> tuple[int, bytes]:
    return send(port, verp, dsn(verp, recipient, **dsn_fields))


# -- VERP -----------------------------------------------------------------------------------


def test_every_email_leaves_with_its_own_signed_verp_return_path(
    api: TestClient, system: System, relay: tuple[RelayHandler, int]
) -> None:
    handler, _ = relay
    _, _, verp, to = sent_order(api, system, handler)
    [row] = outbox(system)
    local, _, domain = verp.partition("@")
    assert domain == DOMAIN and local.startswith("bounce+") and len(local) <= 64
    assert system.services.addresses is not None
    assert verp == system.services.addresses.bounce_address(row.id)
    # The From header stays smtp.from_address.
    assert parseaddr(handler.messages()[0]["From"])[1] == "no-reply@marketplace.example"
    assert to == row.recipient


# -- bounces --------------------------------------------------------------------------------


def test_a_permanent_dsn_bounces_the_row_suppresses_and_tells_support_once(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    handler, _ = relay
    seller, sale_id, verp, to = sent_order(api, system, handler, email="Gone@Shop.example")
    # An MTA that lowercases local parts changes nothing.
    code, reply = bounce(inbound, verp.lower(), to)
    assert code == 250, reply
    code, _ = bounce(inbound, verp, to)  # the same DSN again
    assert code == 250

    [row] = of_template(system, "seller_new_sale")
    assert row.status == "bounced"
    assert row.bounce_status == "5.1.1"
    assert "User unknown" in (row.bounce_diagnostic or "")
    assert suppressed(system) == ["gone@shop.example"]
    [notice] = of_template(system, UNREACHABLE)
    assert notice.recipient == "support@marketplace.example" and notice.sale_id == sale_id
    assert [r.verdict for r in received(system)] == ["bounced", "duplicate"]
    assert [outcome for outcome, _ in attempts(system, row.id)] == ["bounced"]

    deliver(system)
    [support] = [m for m in handler.messages() if m["X-Mailflow-Template"] == UNREACHABLE]
    text = support.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert seller["name"] in text and "5.1.1" in text and f"{sale_id}" in text

    view = api.get(f"/api/v1/sales/{sale_id}").json()
    emails = {e["key"]: e for e in view["emails"]}
    assert emails["seller_new_sale"]["status"] == "bounced"
    assert emails["seller_new_sale"]["bounce"]["status"] == "5.1.1"
    assert emails["seller_new_sale"]["message_id"] == row.message_id
    assert emails[UNREACHABLE]["status"] == "sent" and emails[UNREACHABLE]["bounce"] is None

    metrics = api.get("/metrics").text
    assert 'mailflow_inbound_messages_total{kind="bounce",verdict="bounced"} 1.0' in metrics
    assert 'mailflow_inbound_messages_total{kind="bounce",verdict="duplicate"} 1.0' in metrics
    assert 'mailflow_emails_total{outcome="bounced",template="seller_new_sale"} 1.0' in metrics


def test_a_reminder_bouncing_after_the_order_email_tells_support_no_second_time(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    """One suppression, one notice: a second email to the address bouncing later (sent
    before the first bounce came back) is marked, the address is already suppressed."""
    handler, _ = relay
    who = factories.seller(api)
    factories.order(api, who["id"])
    factories.order(api, who["id"])
    deliver(system)
    first, second = handler.received[0], handler.received[1]
    assert bounce(inbound, first.mail_from, first.rcpt_tos[0])[0] == 250
    assert bounce(inbound, second.mail_from, second.rcpt_tos[0])[0] == 250
    assert [r.status for r in of_template(system, "seller_new_sale")] == ["bounced", "bounced"]
    assert len(of_template(system, UNREACHABLE)) == 1
    assert "already suppressed" in received(system)[1].became


def test_mail_to_a_suppressed_address_is_held_and_sent_once_lifted(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    handler, _ = relay
    seller, _, verp, to = sent_order(api, system, handler)
    assert bounce(inbound, verp, to)[0] == 250
    before = len([r for r in handler.received if r.rcpt_tos == [to]])

    second = factories.order(api, seller["id"])["sales"][0]["id"]
    deliver(system)
    held = [r for r in outbox(system) if r.sale_id == second]
    assert [r.status for r in held] == ["suppressed"]
    assert len([r for r in handler.received if r.rcpt_tos == [to]]) == before
    metrics = api.get("/metrics").text
    assert 'mailflow_emails_total{outcome="suppressed",template="seller_new_sale"} 1.0' in metrics

    listed = api.get("/api/v1/suppressions").json()
    assert listed["total"] == 1
    assert listed["suppressions"][0]["email"] == to and listed["suppressions"][0]["reason"] == (
        "hard_bounce"
    )
    lifted = api.delete(f"/api/v1/suppressions/{to.upper()}")
    assert lifted.status_code == 200, lifted.text
    assert lifted.json() == {"email": to, "requeued": 1}
    assert api.get("/api/v1/suppressions").json()["total"] == 0
    deliver(system)
    assert [r.status for r in outbox(system) if r.sale_id == second] == ["sent"]
    assert len([r for r in handler.received if r.rcpt_tos == [to]]) == before + 1


def test_a_delayed_dsn_is_noted_and_changes_no_status(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    handler, _ = relay
    _, _, verp, to = sent_order(api, system, handler)
    code, _ = bounce(
        inbound,
        verp,
        to,
        action="delayed",
        status="4.4.7",
        diagnostic="smtp; 451 4.4.7 mailbox temporarily unavailable",
    )
    assert code == 250
    [row] = outbox(system)
    assert row.status == "sent"
    assert suppressed(system) == []
    assert [r.verdict for r in received(system)] == ["delayed"]
    assert attempts(system, row.id)[0][0] == "delayed"
    assert "4.4.7" in attempts(system, row.id)[0][1]
    assert of_template(system, UNREACHABLE) == []


def test_an_auto_reply_to_the_bounce_address_is_ignored(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    handler, _ = relay
    _, _, verp, to = sent_order(api, system, handler)
    vacation = (
        f"From: {to}\r\nTo: {verp}\r\nSubject: Absent / Out of office\r\n"
        "Auto-Submitted: auto-replied\r\nX-Autoreply: yes\r\n\r\n"
        "Je suis absent jusqu'au 3 janvier. I am away until January 3.\r\n"
    ).encode()
    assert send(inbound, verp, vacation, mail_from=to)[0] == 250
    [row] = outbox(system)
    assert row.status == "sent"
    [kept] = received(system)
    assert kept.verdict == "ignored" and "auto-reply" in kept.reason
    assert suppressed(system) == []


def test_a_non_standard_bounce_is_read_too(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    """A qmail bounce: plain text, no delivery-status part (flufl.bounce's detectors)."""
    handler, _ = relay
    _, _, verp, to = sent_order(api, system, handler)
    qmail = (
        f"From: MAILER-DAEMON@mx.shop.example\r\nTo: {verp}\r\n"
        "Subject: failure notice\r\n\r\n"
        "Hi. This is the qmail-send program at mx.shop.example.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
        f"<{to}>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        "--- Below this line is a copy of the message.\r\n\r\nSubject: Nouvelle vente\r\n"
    ).encode()
    assert send(inbound, verp, qmail)[0] == 250
    [row] = of_template(system, "seller_new_sale")
    assert row.status == "bounced" and row.bounce_status == "5.1.1"
    assert suppressed(system) == [to]


def test_the_same_dsn_received_by_two_processes_at_once_suppresses_and_tells_once(
    api: TestClient,
    system: System,
    db_url: str,
    make_system: Callable[..., System],
    relay: tuple[RelayHandler, int],
) -> None:
    """Two systems (engines, pools, inbound servers) on one database, as two processes
    behind one MX; the DSN reaches both at the same moment."""
    handler, _ = relay
    _, _, verp, to = sent_order(api, system, handler)
    other = make_system(db_url, inbound={"enabled": True, "domain": DOMAIN})
    replies: list[int] = []
    with inbound_server(system) as (_, one), inbound_server(other) as (_, two):
        start = threading.Barrier(2)

        def deliver_to(port: int) -> None:
            start.wait()
            replies.append(bounce(port, verp, to)[0])

        threads = [threading.Thread(target=deliver_to, args=(p,)) for p in (one, two)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert replies == [250, 250]
    assert sorted(r.verdict for r in received(system)) == ["bounced", "duplicate"]
    assert suppressed(system) == [to]
    assert len(of_template(system, UNREACHABLE)) == 1


# -- the conversation -----------------------------------------------------------------------


def _rcpt(port: int, address: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("relay.example")
        client.mail("")
        return client.rcpt(address)


def test_made_up_and_tampered_recipients_are_refused_at_rcpt(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    handler, _ = relay
    _, _, verp, _ = sent_order(api, system, handler)
    local, _, _ = verp.partition("@")
    signature = local.rpartition("-")[2]
    tampered = local[: -len(signature)] + ("a" if signature[0] != "a" else "b") + signature[1:]
    other_row = local.replace("bounce+", "bounce+9", 1)
    cases = {
        "postmaster@" + DOMAIN: b"5.1.1",
        f"{local}@elsewhere.example": b"5.1.1",
        f"unsubscribe+{local.partition('+')[2]}@{DOMAIN}": b"5.1.1",
        f"bounce+1-short@{DOMAIN}": b"5.1.1",
        f"{tampered}@{DOMAIN}": b"5.7.1",
        f"{other_row}@{DOMAIN}": b"5.7.1",
        "not an address": b"5.1.1",
    }
    for address, enhanced in cases.items():
        code, reply = _rcpt(inbound, address)
        assert (code, reply[:5]) == (550, enhanced), (address, code, reply)
    assert _rcpt(inbound, verp.upper())[0] == 250
    assert received(system) == []


def test_too_many_recipients_are_refused_past_the_limit(
    api: TestClient, system: System, relay: tuple[RelayHandler, int]
) -> None:
    handler, _ = relay
    _, _, verp, _ = sent_order(api, system, handler)
    with (
        inbound_server(system, max_recipients=2) as (_, port),
        smtplib.SMTP("127.0.0.1", port, timeout=10) as client,
    ):
        client.ehlo("relay.example")
        client.mail("")
        assert client.rcpt(verp)[0] == 250
        assert client.rcpt(verp.lower())[0] == 250
        code, reply = client.rcpt(verp)
    assert (code, reply[:5]) == (452, b"4.5.3")


def test_an_oversize_message_is_refused_with_552(
    api: TestClient, system: System, relay: tuple[RelayHandler, int]
) -> None:
    handler, _ = relay
    _, _, verp, to = sent_order(api, system, handler)
    with inbound_server(system, max_message_bytes=4096) as (_, port):
        big = dsn(verp, to) + (b"x" * 70 + b"\r\n") * 80
        code, reply = send(port, verp, big)
        assert (code, reply[:5]) == (552, b"5.3.4")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo("relay.example")
            code, reply = client.mail("", ["SIZE=999999"])
        assert (code, reply[:5]) == (552, b"5.3.4")
        # Within the limit it is kept.
        assert send(port, verp, dsn(verp, to))[0] == 250
    assert [r.verdict for r in received(system)] == ["bounced"]


def _raw_session(port: int, lines: list[bytes]) -> bytes:
    """Send ``lines`` over a raw socket, reading every reply; all the server said."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        reader = sock.makefile("rb")
        said = reader.readline()
        for line in lines:
            sock.sendall(line)
            if line.endswith(b"\r\n.\r\n") or not line.startswith(b"Subject"):
                said += reader.readline()
                while said.splitlines()[-1][3:4] == b"-":
                    said += reader.readline()
    handled(port)
    return said


def test_a_bare_lf_end_of_data_does_not_end_the_message(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    """SMTP smuggling: ``\\n.\\n`` (or ``\\r\\n.\\n``) followed by commands must stay data."""
    handler, _ = relay
    _, _, verp, to = sent_order(api, system, handler)
    smuggled = (
        b"Subject: hello\r\n\r\nfirst part\n.\nMAIL FROM:<evil@attacker.example>\r\n"
        b"RCPT TO:<" + verp.encode() + b">\r\nDATA\r\nsmuggled\r\n.\n"
        b"still data\r\n.\r\n"
    )
    said = _raw_session(
        inbound,
        [
            b"EHLO relay.example\r\n",
            b"MAIL FROM:<>\r\n",
            b"RCPT TO:<" + verp.encode() + b">\r\n",
            b"DATA\r\n",
            smuggled,
            b"QUIT\r\n",
        ],
    )
    replies = [line[:3] for line in said.splitlines() if line[3:4] == b" "]
    # greeting, EHLO, MAIL, RCPT, 354, one 250 for the whole message, QUIT: nothing else.
    assert replies == [b"220", b"250", b"250", b"250", b"354", b"250", b"221"], said
    [kept] = received(system)
    assert kept.mail_from == "" and kept.verdict == "ignored"
    assert [r.status for r in outbox(system)] == ["sent"]
    assert to not in suppressed(system)


HOSTILE: list[bytes] = [
    b"",
    b"\x00\x01\x02 not a message at all \xff\xfe",
    b"Subject: =?utf-8?b?not base64!!?=\r\nContent-Type: multipart/report; boundary=\r\n\r\n--",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n"
    b"Content-Type: message/delivery-status\r\n\r\nAction: failed\r\nStatus: 9.9.9.9\r\n"
    b"Final-Recipient: \xff\xfe; \x00@\x00\r\n\r\n--b--\r\n",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n"
    b"Content-Type: message/delivery-status\r\n\r\n\r\n\r\n--b--\r\n",
    b"Content-Type: text/plain; charset=x-unknown-charset\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n@@@@not*base64\r\n",
    b"X-Long: " + b"a" * 900 + b"\r\nSubject: \xe9t\xe9 \xc3\x28\r\n\r\nbody\r\n",
    b'Content-Type: multipart/mixed; boundary="' + b"x" * 200 + b'"\r\n\r\n' + b"--x\r\n" * 50,
    b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n" * 20,
    "Subject: 日本語のバウンス\r\nFrom: postmaster@例え.jp\r\n\r\n550 5.1.1 échec\r\n".encode(),
]


def test_hostile_bytes_and_encodings_never_crash_and_are_kept(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], inbound: int
) -> None:
    handler, _ = relay
    _, _, verp, _ = sent_order(api, system, handler)
    for data in HOSTILE:
        code, reply = send(inbound, verp, data)
        assert code == 250, (data[:60], reply)
    kept = received(system)
    assert len(kept) == len(HOSTILE)
    assert {r.verdict for r in kept} <= {"ignored", "unreadable", "bounced"}
    assert api.get("/admin/login").status_code == 200


def test_sessions_past_the_limit_are_turned_away_and_silent_ones_time_out(
    system: System,
) -> None:
    with inbound_server(system, max_sessions=2, timeout_seconds=0.5) as (_server, port):
        first = socket.create_connection(("127.0.0.1", port), timeout=5)
        second = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert first.makefile("rb").readline().startswith(b"220")
        assert second.makefile("rb").readline().startswith(b"220")
        third = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert third.makefile("rb").readline().startswith(b"421 4.7.0")
        third.close()
        # The two silent clients are disconnected after the timeout; new ones are served.
        assert first.recv(1024).startswith(b"421") or first.recv(1024) == b""
        second.close()
        first.close()
        fourth = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert fourth.makefile("rb").readline().startswith(b"220")
        fourth.close()


def test_random_bytes_into_the_real_server_never_crash_it(
    api: TestClient, system: System, relay: tuple[RelayHandler, int], patient: int
) -> None:
    """Property: whatever bytes a client sends as a message, the server answers (kept, or a
    line too long) and goes on serving: no 451 (a failure to keep), no dropped session."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    handler, _ = relay
    _, _, verp, _ = sent_order(api, system, handler)
    with smtplib.SMTP("127.0.0.1", patient, timeout=10) as client:
        client.ehlo("relay.example")

        @settings(
            max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(st.binary(max_size=2000) | st.text(max_size=500).map(lambda t: t.encode()))
        def one_message(raw: bytes) -> None:
            assert client.mail("")[0] == 250
            assert client.rcpt(verp)[0] == 250
            code, reply = client.data(raw)
            assert code in (250, 500), reply
            if code != 250:
                client.rset()
            assert client.noop()[0] == 250

        one_message()
    handled(patient)
    verdicts = {r.verdict for r in received(system)}
    assert verdicts and verdicts <= {"ignored", "unreadable", "bounced", "delayed", "duplicate"}


def test_a_client_making_error_after_error_is_slowed_down_then_let_go(system: System) -> None:
    """Postfix's soft and hard error limits: the first errors are answered at once, the next
    ones each after the delay, and past the hard limit the client gets 421 and is closed."""
    limits = {"soft_errors": 3, "hard_errors": 5, "error_delay_seconds": 0.4}
    with inbound_server(system, **limits) as (_server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"220")
            sock.sendall(b"HELO relay.example\r\nMAIL FROM:<>\r\n")
            reader.readline(), reader.readline()
            waits = []
            for n in range(5):
                started = time.monotonic()
                sock.sendall(f"RCPT TO:<nobody{n}@{DOMAIN}>\r\n".encode())
                assert reader.readline().startswith(b"550 5.1.1")
                waits.append(time.monotonic() - started)
            assert max(waits[:2]) < 0.3 and min(waits[2:]) >= 0.4, waits
            sock.sendall(f"RCPT TO:<nobody@{DOMAIN}>\r\n".encode())
            assert reader.readline().startswith(b"421 4.7.0")
            assert reader.readline() == b""  # closed
        # A well-behaved client is served as before.
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo("relay.example")
            assert client.mail("")[0] == 250
