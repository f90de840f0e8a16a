"""DKIM: every email of the catalogue, in every locale, queued by the real outbox of a system
configured with a generated key, delivered over SMTP and verified by dkimpy against that key's
public half (the DNS answer is the record ``mailflow dkim keygen`` prints); one changed byte
of the body breaks it. A retry sends the signed bytes as stored. Partial settings and unusable
keys are one configuration error at start-up; test sends are marked."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import dkim
import pytest
from fastapi.testclient import TestClient

from mailflow.bootstrap import System, build
from mailflow.cli import main
from mailflow.config import ConfigError, load
from mailflow.mail import catalog
from mailflow.mail.dkim import DkimKey, DkimSigner, dns_record, generate_key
from mailflow.mail.formatting import SUPPORTED_LOCALES
from mailflow.mail.outbox import Recipient
from mailflow.store.models import OutboxMessage
from tests.conftest import API_TOKEN, make_settings
from tests.support import MovableClock, RelayHandler, deliver

DOMAIN = "marketplace.example"
SELECTOR = "mf2026"
CASES = [(key, locale) for key in sorted(catalog.KINDS) for locale in SUPPORTED_LOCALES]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An RSA and an Ed25519 key, made as ``mailflow dkim keygen`` makes them."""
    folder = tmp_path_factory.mktemp("dkim")
    made = {}
    for algorithm in ("rsa", "ed25519"):
        path = folder / f"{algorithm}.pem"
        path.write_bytes(generate_key(algorithm))  # type: ignore[arg-type]
        made[algorithm] = path
    return made


def dkim_settings(path: Path) -> dict[str, str]:
    return {"dkim_domain": DOMAIN, "dkim_selector": SELECTOR, "dkim_private_key_file": str(path)}


def resolver(path: Path) -> Callable[..., bytes | None]:
    """dkimpy's DNS lookup, answering for the selector with the key's published record."""
    record = dns_record(DkimKey.from_file(path)).encode("ascii")

    def txt(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return txt


def verifies(raw: bytes, dns: Callable[..., bytes | None]) -> bool:
    return bool(dkim.verify(raw, dnsfunc=dns))


def one_byte_changed(raw: bytes) -> bytes:
    """``raw`` with one byte of the body (a letter of the text part) changed."""
    head, _, body = raw.partition(b"\r\n\r\n")
    text = body.index(b"\r\n\r\n", body.index(b"text/plain")) + 4  # the text part's content
    at = re.search(rb"[a-z]", body[text:])
    assert at is not None
    index = text + at.start()
    changed = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    return head + b"\r\n\r\n" + changed


def signature_tags(raw: bytes) -> dict[str, str]:
    head = raw.partition(b"\r\n\r\n")[0].decode("ascii")
    match = re.match(r"DKIM-Signature: (.*?)\r\n(?=\S)", head, re.S)
    assert match, "the DKIM-Signature header is not the first header"
    value = re.sub(r"\s+", "", match.group(1))
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


@pytest.fixture
def signed_system(
    sqlite_url: str, make_system: Callable[..., System], keys: dict[str, Path]
) -> System:
    return make_system(sqlite_url, smtp=dkim_settings(keys["rsa"]))


def test_every_template_in_every_locale_is_signed_and_verifies(
    signed_system: System, relay: tuple[RelayHandler, int], keys: dict[str, Path]
) -> None:
    handler, _ = relay
    with signed_system.db.transaction() as session:
        for key, locale in CASES:
            signed_system.outbox.queue(
                session,
                key,
                Recipient("Éloïse Müller", f"{key}.{locale}@example.org", locale),
                catalog.kind(key).sample_context(),
            )
    assert deliver(signed_system) == len(CASES)
    dns = resolver(keys["rsa"])
    received = {r.rcpt_tos[0]: r.raw for r in handler.received}
    assert len(received) == len(CASES)
    failures = []
    for key, locale in CASES:
        raw = received[f"{key}.{locale}@example.org"]
        tags = signature_tags(raw)
        signed = tags["h"].lower().split(":")
        problems = [
            f"not verified: {tags}" * (not verifies(raw, dns)),
            "verified with a changed body byte" * verifies(one_byte_changed(raw), dns),
            f"c={tags['c']}" * (tags["c"] != "relaxed/relaxed"),
            f"a={tags['a']}" * (tags["a"] != "rsa-sha256"),
            f"d={tags['d']} s={tags['s']}" * ((tags["d"], tags["s"]) != (DOMAIN, SELECTOR)),
            *(
                f"{name} not signed"
                for name in (
                    "from",
                    "to",
                    "subject",
                    "date",
                    "message-id",
                    "reply-to",
                    "mime-version",
                    "content-type",
                )
                if name not in signed
            ),
        ]
        failures += [f"{key}/{locale}: {p}" for p in problems if p]
    assert failures == []


def test_an_ed25519_key_signs_too(
    sqlite_url: str,
    make_system: Callable[..., System],
    relay: tuple[RelayHandler, int],
    keys: dict[str, Path],
) -> None:
    system = make_system(sqlite_url, smtp=dkim_settings(keys["ed25519"]))
    with system.db.transaction() as session:
        system.outbox.queue(
            session,
            "seller_new_sale",
            Recipient("", "seller@example.org", "fr"),
            catalog.kind("seller_new_sale").sample_context(),
        )
    deliver(system)
    [received] = relay[0].received
    assert signature_tags(received.raw)["a"] == "ed25519-sha256"
    assert verifies(received.raw, resolver(keys["ed25519"]))
    assert not verifies(one_byte_changed(received.raw), resolver(keys["ed25519"]))


def test_a_retried_message_is_sent_as_signed_and_still_verifies(
    signed_system: System,
    relay: tuple[RelayHandler, int],
    keys: dict[str, Path],
    clock: MovableClock,
) -> None:
    handler, _ = relay
    handler.script = ["451 try again later"]
    with signed_system.db.transaction() as session:
        row_id = signed_system.outbox.queue(
            session,
            "buyer_sale_refused",
            Recipient("", "buyer@example.org", "en"),
            catalog.kind("buyer_sale_refused").sample_context(),
        )
    assert deliver(signed_system) == 0
    clock.advance(minutes=5)
    assert deliver(signed_system) == 1
    assert handler.attempts == 2
    [received] = handler.received
    with signed_system.db.read() as session:
        stored = session.get(OutboxMessage, row_id)
        assert stored is not None
        body = bytes(stored.body)
    # The bytes signed when the message was queued, unchanged by the failed attempt.
    assert received.raw.rstrip(b"\r\n") == body.rstrip(b"\r\n")
    assert verifies(received.raw, resolver(keys["rsa"]))


def test_a_signature_that_fails_at_send_time_never_blocks_the_email(
    signed_system: System, relay: tuple[RelayHandler, int], caplog: pytest.LogCaptureFixture
) -> None:
    # The key went bad after the start-up check (a fault injected into the live signer).
    signer = signed_system.outbox.dkim
    assert signer is not None
    signer.key = DkimKey("rsa", b"-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END", "")
    with signed_system.db.transaction() as session:
        row_id = signed_system.outbox.queue(
            session,
            "seller_login_link",
            Recipient("", "seller@example.org", "fr"),
            catalog.kind("seller_login_link").sample_context(),
        )
    assert deliver(signed_system) == 1
    assert b"DKIM-Signature" not in relay[0].received[0].raw
    with signed_system.db.read() as session:
        stored = session.get(OutboxMessage, row_id)
        assert stored is not None
        assert (stored.note or "").startswith("sent without a DKIM signature: ")
    assert "sent without a DKIM signature" in caplog.text


def test_without_dkim_settings_nothing_is_signed(
    system: System, relay: tuple[RelayHandler, int]
) -> None:
    assert system.outbox.dkim is None
    with system.db.transaction() as session:
        system.outbox.queue(
            session,
            "seller_login_link",
            Recipient("", "seller@example.org", "en"),
            catalog.kind("seller_login_link").sample_context(),
        )
    deliver(system)
    assert b"DKIM-Signature" not in relay[0].received[0].raw


class TestTestSends:
    @pytest.fixture
    def api(self, signed_system: System) -> Iterator[TestClient]:
        from mailflow.web.app import create_app

        with TestClient(create_app(signed_system), base_url="http://mailflow.test") as client:
            client.headers["Authorization"] = f"Bearer {API_TOKEN}"
            yield client

    def test_marked_in_the_subject_and_a_signed_header(
        self,
        api: TestClient,
        signed_system: System,
        relay: tuple[RelayHandler, int],
        keys: dict[str, Path],
    ) -> None:
        url = "/api/v1/templates/seller_new_sale/fr"
        response = api.post(f"{url}/test-send", json={"to": "qa@example.org"})
        assert response.status_code == 202, response.text
        preview = api.post(f"{url}/preview", json={}).json()
        deliver(signed_system)
        [received] = relay[0].received
        message = received.message
        assert message["Subject"] == f"[TEST] {preview['subject']}"
        assert message["X-Mailflow-Test"] == "yes"
        assert "x-mailflow-test" in signature_tags(received.raw)["h"].lower().split(":")
        assert verifies(received.raw, resolver(keys["rsa"]))


# --- start-up -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"DKIM_DOMAIN": DOMAIN}, "smtp.dkim_selector, smtp.dkim_private_key_file"),
        ({"DKIM_DOMAIN": DOMAIN, "DKIM_SELECTOR": SELECTOR}, "smtp.dkim_private_key_file"),
        ({"DKIM_PRIVATE_KEY_FILE": "/nonexistent.pem"}, "smtp.dkim_domain, smtp.dkim_selector"),
    ],
)
def test_partial_settings_are_one_configuration_error(
    given: dict[str, str],
    missing: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    environ = {f"MAILFLOW_SMTP__{name}": value for name, value in given.items()}
    with pytest.raises(ConfigError, match=f"missing: {missing}$"):
        load(None, environ, create_dev_secrets=False)
    monkeypatch.chdir(tmp_path)  # no mailflow.toml here: the development defaults
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(["worker"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mailflow: configuration: smtp: ")
    assert f"missing: {missing}" in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing created: no database, no data folder


SHORT_RSA_KEY = b"""-----BEGIN PRIVATE KEY-----
MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEArifdSdig7BsSXzaA
WnBXyIJmD4+HKjQMU6uT0rT5WdYcfKcIMl5gzkUmPpWpZyHbGWqCTg3VB+V+eiiV
yz2MiQIDAQABAkAIix4Y9E6Ypo9VKmhLh31W8cat9r2LvXfpVt5ulMAyvvB2HHhQ
tHZAdJB82wryCMam0xIC91+8ukGPqqc04IYtAiEA2qhfeV0XkXwKFBcTphjBztHk
gMRKQB6rYrS3SNjWgfcCIQDL5eHrlZfLL+0e8Nd336L1nhmRQvHytAlu/MQfW7DF
fwIhAI5B6Qu+oyzF9JCpiuEPTlhOeknEa0JYMczgIjbEzJp1AiAzTn5B1JukokOt
lHbzkA+mdIkEd28AXnM9PVdweJcLqwIhAK2HST0kEQa7Ne0SQRMdTM0sNb1WrkcF
SAu5K7E2LuHB
-----END PRIVATE KEY-----
"""
"""A 512-bit RSA key (made with openssl; cryptography refuses to make one), for the refusal."""

UNUSABLE = {
    "not a key": (b"hello\n", "is not a PEM private key"),
    "a short RSA key": (SHORT_RSA_KEY, "is a 512-bit RSA key"),
    "an encrypted key": (None, "protected by a passphrase"),
    "a certificate": (
        b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "is not a PEM private key",
    ),
}


def _unusable(name: str, folder: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    data, _ = UNUSABLE[name]
    if name == "an encrypted key":
        data = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    path = folder / "key.pem"
    assert data is not None
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", sorted(UNUSABLE))
def test_an_unusable_key_stops_the_start_with_one_line(
    name: str,
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _unusable(name, tmp_path)
    config = tmp_path / "mailflow.toml"
    config.write_text(
        f'[database]\nurl = "{sqlite_url}"\n[security]\nsecret_keys = ["{"s" * 40}"]\n'
        f'[smtp]\ndkim_domain = "{DOMAIN}"\ndkim_selector = "{SELECTOR}"\n'
        f'dkim_private_key_file = "{path}"\n'
    )
    settings = load(config, {}).settings
    with pytest.raises(ConfigError, match=UNUSABLE[name][1]):
        build(settings)
    for command in (["serve"], ["worker"], ["db", "upgrade"], ["inbox"]):
        assert main([*command, "--config", str(config)]) == 2
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("mailflow: configuration: smtp.dkim_private_key_file: ")
        assert UNUSABLE[name][1] in lines[0] and "Traceback" not in err
        assert out == ""


def test_a_missing_key_file_or_a_bad_name_is_named(tmp_path: Path, keys: dict[str, Path]) -> None:
    settings = make_settings("sqlite:///x.db", 25, smtp=dkim_settings(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match=r"smtp.dkim_private_key_file: cannot read .*missing"):
        build(settings)
    bad = make_settings(
        "sqlite:///x.db", 25, smtp={**dkim_settings(keys["rsa"]), "dkim_selector": "no way"}
    )
    with pytest.raises(ConfigError, match=r"smtp.dkim_selector: 'no way' is not a DNS name"):
        build(bad)


# --- mailflow dkim keygen -------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_keygen_writes_a_key_that_signs_for_the_record_it_prints(
    algorithm: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["dkim", "keygen", "--selector", SELECTOR, "--domain", DOMAIN, "--out", str(tmp_path)]
    assert main([*argv, "--algorithm", algorithm]) == 0
    out = capsys.readouterr().out
    private = tmp_path / f"{SELECTOR}.{DOMAIN}.private.pem"
    assert private.stat().st_mode & 0o777 == 0o600
    zone = (tmp_path / f"{SELECTOR}.{DOMAIN}.dns.txt").read_text()
    assert zone.startswith(f'{SELECTOR}._domainkey.{DOMAIN}. IN TXT ( "v=DKIM1; k={algorithm}; p=')
    assert zone.strip() in out
    # The strings of the zone line joined are the record; each fits in one DNS string.
    strings = re.findall(r'"([^"]*)"', zone)
    assert all(len(s) <= 255 for s in strings)
    record = "".join(strings).encode("ascii")
    assert f'dkim_private_key_file = "{private.resolve()}"' in out

    signer = DkimSigner(DOMAIN, SELECTOR, DkimKey.from_file(private))
    message = (
        b"From: a@marketplace.example\r\nTo: b@example.org\r\nSubject: x\r\n"
        b"Date: Thu, 26 Nov 2026 14:30:00 +0000\r\nMessage-ID: <1@marketplace.example>\r\n"
        b"\r\nbody\r\n"
    )
    assert dkim.verify(signer.sign(message), dnsfunc=lambda name, timeout=5: record)

    # A second run would overwrite the key: refused, nothing changed.
    before = private.read_bytes()
    assert main([*argv, "--algorithm", algorithm]) == 2
    assert "exists already" in capsys.readouterr().err
    assert private.read_bytes() == before


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["--selector", "bad selector"], "--selector: 'bad selector' is not a DNS name"),
        (["--domain=-x.example"], "--domain: '-x.example' is not a DNS name"),
        (["--domain=a..example"], "--domain: 'a..example' is not a DNS name"),
        (["--bits", "512"], "--bits: 512: RSA keys of 1024 to 4096 bits"),
        (["--out", "/nonexistent/folder"], "--out /nonexistent/folder: no such folder"),
    ],
)
def test_keygen_refuses_bad_input(
    extra: list[str], error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["dkim", "keygen", "--selector", SELECTOR, "--domain", DOMAIN, "--out", str(tmp_path)]
    assert main([*argv, *extra]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mailflow: {error}"), lines
    assert list(tmp_path.iterdir()) == []
