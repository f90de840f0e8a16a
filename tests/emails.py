"""Every email of the catalogue, in every locale, as the worker sends it: rendered with its
sample context, composed, and its HTML part read back from the message bytes (the HTML as
sent: CSS inlined, quoted-printable decoded). The checks of the email HTML (the caniemail
data, axe-core, the dark and light screenshots) iterate over these, so a key added to the
catalogue is checked with no change here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import cache

from mailflow.mail import catalog
from mailflow.mail.compose import address, compose, new_message_id
from mailflow.mail.formatting import SUPPORTED_LOCALES
from mailflow.mail.templates import Renderer, templates_root

SENDER = address("Marketplace", "no-reply@marketplace.example")


@dataclass(frozen=True)
class SentEmail:
    key: str
    locale: str
    raw: bytes

    @property
    def name(self) -> str:
        return f"{self.key}/{self.locale}"

    @property
    def html(self) -> str:
        message = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        part = message.get_body(("html",))
        assert part is not None, f"{self.name} has no HTML part"
        content: str = part.get_content()
        return content


def cases() -> list[tuple[str, str]]:
    return [(key, locale) for key in sorted(catalog.KINDS) for locale in SUPPORTED_LOCALES]


@cache
def sent_emails() -> tuple[SentEmail, ...]:
    renderer = Renderer(templates_root(), "Europe/Paris")
    emails = []
    for key, locale in cases():
        rendered = renderer.render(key, locale, catalog.kind(key).sample_context())
        raw = compose(
            sender=SENDER,
            recipient=address("Éloïse Müller", "eloise@example.org"),
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=new_message_id("no-reply@marketplace.example"),
            date=datetime(2026, 11, 26, 14, 30, tzinfo=UTC),
            template=key,
        )
        emails.append(SentEmail(key, locale, raw))
    return tuple(emails)
