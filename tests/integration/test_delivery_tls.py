"""Delivery to a relay over TLS: implicit TLS (port 465 style) and STARTTLS.

The relays are aiosmtpd servers on loopback with a certificate made for 127.0.0.1 by the test
itself; the worker trusts it through ``smtp.tls_ca_file``. Orders go in through the API and
the worker delivers them as ``mailflow serve`` does.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.bootstrap import System
from mailflow.store.models import OutboxMessage
from tests import factories
from tests.conftest import API_TOKEN
from tests.support import RelayHandler, deliver, smtp_relay


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, its own authority."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailflow test relay")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file = folder / "relay.pem"
    key_file = folder / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


class TlsRecordingRelay(RelayHandler):
    """The test relay, also noting whether each message came over an encrypted session."""

    def __init__(self) -> None:
        super().__init__()
        self.encrypted: list[bool] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.encrypted.append(server.transport.get_extra_info("ssl_object") is not None)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def implicit_relay(certificate: Certificate) -> Iterator[tuple[TlsRecordingRelay, int]]:
    with smtp_relay(TlsRecordingRelay(), ssl_context=certificate.server_context()) as running:
        yield running


@pytest.fixture
def starttls_relay(certificate: Certificate) -> Iterator[tuple[TlsRecordingRelay, int]]:
    relay = smtp_relay(
        TlsRecordingRelay(), tls_context=certificate.server_context(), require_starttls=True
    )
    with relay as running:
        yield running


def _queue_one_order(system: System) -> None:
    from mailflow.web.app import create_app

    with TestClient(create_app(system), base_url="http://mailflow.test") as api:
        api.headers["Authorization"] = f"Bearer {API_TOKEN}"
        factories.order(api, factories.seller(api)["id"])


def _outbox(system: System) -> OutboxMessage:
    with system.db.read() as session:
        [row] = session.execute(select(OutboxMessage)).scalars()
        return row


def _delivered_over_tls(system: System, handler: TlsRecordingRelay) -> None:
    assert deliver(system) == 1
    row = _outbox(system)
    assert row.status == "sent", row.last_error
    assert [m["Message-ID"] for m in handler.messages()] == [row.message_id]
    assert handler.encrypted == [True]


def test_implicit_tls_relay_receives_the_mail(
    sqlite_url: str,
    make_system: Callable[..., System],
    implicit_relay: tuple[TlsRecordingRelay, int],
    certificate: Certificate,
) -> None:
    handler, port = implicit_relay
    smtp = {"port": port, "tls": "implicit", "tls_ca_file": str(certificate.cert_file)}
    system = make_system(sqlite_url, smtp=smtp)
    _queue_one_order(system)
    _delivered_over_tls(system, handler)


@pytest.mark.parametrize(
    "tls_keys", [{"tls": "starttls"}, {"starttls": True}], ids=["tls", "older-starttls"]
)
def test_starttls_relay_receives_the_mail(
    sqlite_url: str,
    make_system: Callable[..., System],
    starttls_relay: tuple[TlsRecordingRelay, int],
    certificate: Certificate,
    tls_keys: dict[str, Any],
) -> None:
    handler, port = starttls_relay
    smtp = {"port": port, "tls_ca_file": str(certificate.cert_file), **tls_keys}
    system = make_system(sqlite_url, smtp=smtp)
    _queue_one_order(system)
    _delivered_over_tls(system, handler)


def test_an_untrusted_certificate_is_refused_and_retried_later(
    sqlite_url: str,
    make_system: Callable[..., System],
    implicit_relay: tuple[TlsRecordingRelay, int],
) -> None:
    """Without ``tls_ca_file`` the self-signed certificate is not trusted: nothing is sent
    and the message stays queued with the verification error."""
    handler, port = implicit_relay
    system = make_system(sqlite_url, smtp={"port": port, "tls": "implicit"})
    _queue_one_order(system)
    assert deliver(system) == 0
    row = _outbox(system)
    assert row.status == "queued"
    assert row.last_error is not None and "CERTIFICATE_VERIFY_FAILED" in row.last_error
    assert handler.received == []
