"""DKIM: the signature a receiver checks against the key published in the sender's DNS.

``DkimSigner`` holds one private key, read and checked once when the system is built (a key
that cannot sign is a configuration error then, not a failure at the first email). ``sign``
prepends a ``DKIM-Signature`` header (dkimpy, ``relaxed/relaxed``, ``rsa-sha256`` or
``ed25519-sha256`` after the key's type) to a composed message. The outbox signs a message
once, when it is queued, and stores the signed bytes: a retry sends the very bytes that were
signed, so the signature stays valid (its ``t=`` is the queue time and it carries no ``x=``
expiry; keep an old selector's DNS record published for ``give_up_after_hours`` after a key
change).

``generate_key`` and ``dns_record`` serve ``mailflow dkim keygen``.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dkim
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

Algorithm = Literal["rsa", "ed25519"]

MIN_RSA_BITS = 1024
"""Receivers ignore shorter RSA keys (RFC 8301); ``generate_key`` makes 2048-bit ones."""
DEFAULT_RSA_BITS = 2048
MAX_RSA_BITS = 4096

SIGNED_HEADERS = (
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Auto-Submitted",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "X-Mailflow-Template",
    "X-Mailflow-Test",
)
"""Every header of these that a message has is signed (as many times as it occurs)."""

SEALED_HEADERS = ("From", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID")
"""Signed once more than they occur (once when absent): a relay or forwarder cannot add a
second From or a Reply-To the message did not have without breaking the signature."""

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


class DkimError(ValueError):
    """A DKIM setting or key that cannot be used; the message says why, ``setting`` which
    ``[smtp]`` setting is at fault."""

    def __init__(self, message: str, setting: str = "dkim_private_key_file") -> None:
        super().__init__(message)
        self.setting = setting


def check_name(value: str, what: str) -> str:
    """``value`` if it is a DNS name (dot-separated labels of letters, digits, ``-``, ``_``)."""
    labels = value.rstrip(".").split(".")
    if not value or not all(_LABEL.match(label) for label in labels):
        raise DkimError(f"{value!r} is not a DNS name (letters, digits, '-', '_', dots)", what)
    return value.rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A private key as dkimpy takes it, and the public half as DNS publishes it."""

    algorithm: Algorithm
    private: bytes
    """PKCS#1 PEM (RSA), or the base64 32-byte seed (Ed25519, RFC 8463)."""
    public: str
    """The ``p=`` value of the DNS record: base64 of the DER public key (RSA) or of the 32
    raw bytes (Ed25519)."""

    @property
    def signature_algorithm(self) -> bytes:
        return b"rsa-sha256" if self.algorithm == "rsa" else b"ed25519-sha256"

    @classmethod
    def from_pem(cls, data: bytes, source: str = "the key") -> DkimKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError as exc:  # encrypted
            raise DkimError(
                f"{source} is protected by a passphrase; give an unencrypted key"
            ) from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise DkimError(f"{source} is not a PEM private key (RSA or Ed25519)") from exc
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < MIN_RSA_BITS:
                raise DkimError(
                    f"{source} is a {key.key_size}-bit RSA key; receivers ignore RSA keys "
                    f"under {MIN_RSA_BITS} bits (use {DEFAULT_RSA_BITS})"
                )
            private = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
            public = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return cls("rsa", private, base64.b64encode(public).decode("ascii"))
        if isinstance(key, ed25519.Ed25519PrivateKey):
            seed = key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            raw_public = key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            return cls(
                "ed25519", base64.b64encode(seed), base64.b64encode(raw_public).decode("ascii")
            )
        raise DkimError(f"{source} is a {type(key).__name__}; DKIM takes an RSA or Ed25519 key")

    @classmethod
    def from_file(cls, path: str | Path) -> DkimKey:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DkimError(f"cannot read {path}: {exc.strerror or exc}") from exc
        return cls.from_pem(data, str(path))


def dns_record(key: DkimKey) -> str:
    """The TXT record's value: ``v=DKIM1; k=rsa; p=…``."""
    return f"v=DKIM1; k={key.algorithm}; p={key.public}"


def dns_zone_line(key: DkimKey, selector: str, domain: str) -> str:
    """The record as a zone-file line, its value split into strings of at most 255
    characters (what one DNS TXT string holds)."""
    value = dns_record(key)
    chunks = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
    return f"{selector}._domainkey.{domain}. IN TXT ( {chunks} )"


def generate_key(algorithm: Algorithm = "rsa", bits: int = DEFAULT_RSA_BITS) -> bytes:
    """A new private key as unencrypted PKCS#8 PEM."""
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "rsa":
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise DkimError(
                f"{bits}: RSA keys of {MIN_RSA_BITS} to {MAX_RSA_BITS} bits (receivers ignore "
                f"shorter ones; longer ones hardly fit in DNS)",
                "--bits",
            )
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


_HEADER_NAME = re.compile(rb"^([!-9;-~]+):", re.M)

_PROBE = (
    b"From: probe@example.invalid\r\nTo: probe@example.invalid\r\nSubject: probe\r\n"
    b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <probe@example.invalid>\r\n"
    b"\r\nprobe\r\n"
)


class DkimSigner:
    """Signs composed messages for ``domain`` with the key published at ``selector``."""

    def __init__(self, domain: str, selector: str, key: DkimKey) -> None:
        self.domain = check_name(domain, "dkim_domain")
        self.selector = check_name(selector, "dkim_selector")
        self.key = key
        self._domain = self.domain.encode("ascii")
        self._selector = self.selector.encode("ascii")
        self._signed = frozenset(name.lower() for name in SIGNED_HEADERS)
        self._sealed = [name.encode("ascii") for name in SEALED_HEADERS]
        try:
            self.sign(_PROBE)  # a key dkimpy cannot use fails here, at start-up
        except DkimError as exc:
            raise DkimError(f"the key cannot sign: {exc}") from exc

    @classmethod
    def from_settings(cls, domain: str, selector: str, key_file: str) -> DkimSigner:
        return cls(domain, selector, DkimKey.from_file(key_file))

    def headers_to_sign(self, message: bytes) -> list[bytes]:
        """The ``h=`` list: each signed header as often as it occurs, the sealed ones once
        more."""
        head = message.split(b"\r\n\r\n", 1)[0]
        present = [
            name.encode("ascii")
            for match in _HEADER_NAME.finditer(head)
            if (name := match.group(1).decode("ascii").lower()) in self._signed
        ]
        return present + self._sealed

    def sign(self, message: bytes) -> bytes:
        """``message`` (CRLF line ends, as composed) with a ``DKIM-Signature`` header first."""
        try:
            header: bytes = dkim.DKIM(message).sign(
                self._selector,
                self._domain,
                self.key.private,
                signature_algorithm=self.key.signature_algorithm,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=self.headers_to_sign(message),
            )
        except (dkim.DKIMException, ValueError) as exc:  # ValueError: a key's bad base64
            raise DkimError(str(exc) or type(exc).__name__) from exc
        return header + message
