"""The message catalogs: every key the code and the page templates use is in every catalog,
translated, with the same placeholders in every language; plurals follow each locale's plural
rule; a missing key or value never raises at runtime; picking a locale."""

from __future__ import annotations

import io
import re
import string
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract, extract_python
from jinja2.ext import babel_extract

from mailflow import i18n
from mailflow.domain.money import PaymentState
from mailflow.domain.sales import Action, Actor, Channel, Reason, SaleStatus
from mailflow.domain.webhooks import EVENT_TYPES
from mailflow.i18n.catalogs import DOMAINS, catalog
from mailflow.mail.formatting import when

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "templates" / "web"
LOCALES = i18n.SUPPORTED_LOCALES
# What the code calls to word a message: t(key) in pages and the console, i18n.t(locale, key).
KEYWORDS: dict[str, None] = {"t": None, "tn": None, "_t": None}
# A literal that names a message (a key kept in a variable, or picked by a condition); not a
# file name such as "confirm.html.j2".
KEY_SHAPED = re.compile(
    r"""["']((?:status|reason|hint|label|forbidden|portal|confirm|view|done|invalid|expired|"""
    r"""notfound|seller|admin)\.(?![a-z_]*\.j2)[a-z0-9_.-]*[a-z0-9_])["']"""
)
# Keys the code builds from a value: the family, and the values it is built from.
TIERS = ("ok", "warning", "over", "suspended")
DYNAMIC = {
    "status.{}": [s.value for s in SaleStatus],
    "reason.{}": [r.value for r in Reason],
    "seller.actor.{}": [a.value for a in Actor],
    "seller.channel.{}": [c.value for c in Channel],
    "seller.event.{}": ["create", *(a.value for a in Action)],
    "seller.payment.{}": [p.value for p in PaymentState],
    "seller.tier.{}": list(TIERS),
    "seller.tier_help.{}": list(TIERS),
    "seller.tier_help.few_{}": ["under", "warning", "over"],
    "seller.tier_notice.{}": list(TIERS[1:]),
    "seller.login.{}.title": ["invalid", "expired", "used"],
    "seller.login.{}.body": ["invalid", "expired", "used"],
    "seller.done.{}": ["accept", "refuse", "cancel"],
    "confirm.{}.title": ["accept", "refuse"],
    "confirm.{}.body": ["accept", "refuse"],
    "confirm.{}.button": ["accept", "refuse"],
    "done.{}": ["accept", "refuse"],
    "view.{}": ["accept", "refuse"],
    "admin.{}.message": ["outbox", "inbox"],
}


def _first_key(messages: object) -> str | None:
    found = messages if isinstance(messages, tuple) else (messages,)
    return next((m for m in found if isinstance(m, str) and m), None)


def _keys(paths: list[Path], method: object) -> set[str]:
    """The keys of the calls Babel's extractor finds (each call's first string argument:
    ``i18n.t(locale, key)`` has it second), and the key-shaped literals."""
    keys: set[str] = set()
    for path in paths:
        source = path.read_bytes()
        for found in extract(method, io.BytesIO(source), KEYWORDS):  # type: ignore[arg-type]
            key = _first_key(found[1])
            if key:
                keys.add(key)
        keys |= set(KEY_SHAPED.findall(source.decode()))
    return keys


def _python_keys() -> set[str]:
    # Webhook event types ("seller.tier_changed") are key-shaped names of events, not words.
    return _keys(sorted((ROOT / "mailflow").rglob("*.py")), _python_calls) - EVENT_TYPES


def _python_calls(fileobj: Any, keywords: Any, comment_tags: Any, options: Any) -> Any:
    """Babel's Python extractor, each call with all its arguments (no keyword spec)."""
    for lineno, _, messages, comments in extract_python(fileobj, keywords, comment_tags, options):
        yield lineno, "", (_first_key(messages),), comments


def _template_keys() -> set[str]:
    return _keys(sorted(PAGES.rglob("*.j2")), babel_extract)


def _dynamic_keys() -> set[str]:
    return {family.format(value) for family, values in DYNAMIC.items() for value in values}


def _all_messages(locale: str) -> dict[str, tuple[str, ...]]:
    """Every message of ``locale``: key → its text, or its plural forms."""
    found: dict[str, tuple[str, ...]] = {}
    for domain in DOMAINS:
        for message in catalog(locale, domain):
            if not message.id:
                continue
            key = message.id if isinstance(message.id, str) else message.id[0]
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            found[key] = tuple(str(form or "") for form in strings)
    return found


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class TestEveryKeyIsTranslated:
    def test_the_extraction_finds_the_calls(self) -> None:
        used = _python_keys() | _template_keys()
        # One of each kind: a console key, a page key, a plural, a key kept in a variable.
        assert {"admin.nav.sales", "seller.sales.title", "seller.chart.point"} <= used
        assert {"seller.login.bad_email", "admin.withdraw.already"} <= used

    @pytest.mark.parametrize("locale", LOCALES)
    def test_every_key_used_is_in_the_catalog_and_translated(self, locale: str) -> None:
        messages = _all_messages(locale)
        used = _python_keys() | _template_keys() | _dynamic_keys()
        assert sorted(used - set(messages)) == []
        assert sorted(k for k in used if not all(messages[k])) == []

    def test_the_hints_the_services_return_have_words(self) -> None:
        messages = _all_messages("en")
        hints = [k for k in messages if k.startswith("hint.") and k != "hint.closed"]
        for key in hints:
            action, status = key.removeprefix("hint.").split(".")
            Action(action), SaleStatus(status)
        assert i18n.CLOSED_HINT in messages

    def test_every_catalog_has_the_same_keys(self) -> None:
        for domain in DOMAINS:
            ids = [{str(m.id) for m in catalog(locale, domain) if m.id} for locale in LOCALES]
            assert ids[0] == ids[1], domain

    def test_a_key_lives_in_one_domain(self) -> None:
        seen: dict[str, str] = {}
        for domain in DOMAINS:
            for message in catalog("en", domain):
                key = str(message.id)
                assert key not in seen or not message.id, (key, seen.get(key), domain)
                seen[key] = domain

    def test_placeholders_are_the_same_in_every_language(self) -> None:
        catalogs = {locale: _all_messages(locale) for locale in LOCALES}
        for key, english in catalogs["en"].items():
            expected = _placeholders(english[0])
            for locale in LOCALES:
                for form in catalogs[locale][key]:
                    assert _placeholders(form) == expected, (locale, key, form)

    def test_plural_messages_have_every_form_of_the_locale(self) -> None:
        for locale in LOCALES:
            forms = catalog(locale, "portal").num_plurals
            plural = [v for v in _all_messages(locale).values() if len(v) > 1]
            assert plural and all(len(v) == forms for v in plural)


class TestWording:
    def test_plurals_follow_the_locale(self) -> None:
        def point(locale: str, count: int) -> str:
            return i18n.tn(locale, "seller.chart.point", count, when="x", rate="r")

        assert point("fr", 1).endswith("(1 vente comptée)")
        assert point("fr", 0).endswith("(0 vente comptée)")
        assert point("fr", 3).endswith("(3 ventes comptées)")
        assert point("en", 1).endswith("(1 sale counted)")
        assert point("en", 0).endswith("(0 sales counted)")
        assert point("en", 3).endswith("(3 sales counted)")

    def test_the_console_speaks_french(self) -> None:
        assert i18n.t("fr", "admin.nav.sellers") == "Vendeurs"
        assert i18n.t("en", "admin.nav.sellers") == "Sellers"
        assert i18n.tn("fr", "admin.sellers.total", 2).startswith("2 vendeurs")

    def test_a_missing_key_or_value_never_raises(self, caplog: pytest.LogCaptureFixture) -> None:
        assert i18n.t("fr", "no.such.key", x=1) == "no.such.key"
        assert i18n.tn("en", "no.such.plural", 2) == "no.such.plural"
        assert "no.such.key" in caplog.text
        assert i18n.t("en", "seller.sales.count") == "Sales found: {count}"
        assert i18n.t("en", "seller.pager.page", page=2) == "Page 2 of {pages}"
        assert i18n.fill("a {b", {"b": 1}) == "a {b"
        assert i18n.t("de", "status.pending") == i18n.t("fr", "status.pending")

    def test_hints_are_worded_from_their_code(self) -> None:
        code = i18n.hint_code(Action.CANCEL, SaleStatus.PENDING)
        assert code == "cancel.pending"
        assert i18n.hint("en", code).startswith("The sale is not accepted yet")
        assert i18n.hint("fr", code).startswith("La vente n'est pas encore acceptée")
        assert i18n.hint("en", "accept.refused") == i18n.t("en", "hint.closed")
        assert i18n.hint("en", None) == ""


class TestLocales:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [
            ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
            ("en-GB", "en"),
            ("de, en-GB;q=0.8, fr;q=0.5", "en"),
            ("de, fr;q=0.9, en;q=0.5", "fr"),
            ("fr;q=0, en", "en"),
            ("de", None),
            ("", None),
            (None, None),
            ("fr;q=x", None),
        ],
    )
    def test_the_browsers_language(self, header: str | None, expected: str | None) -> None:
        assert i18n.from_accept_language(header) == expected

    def test_times_can_show_their_zone(self) -> None:
        winter = datetime(2026, 12, 4, 13, 15, tzinfo=UTC)
        summer = datetime(2026, 7, 4, 13, 15, tzinfo=UTC)
        assert when(winter, "fr", "Europe/Paris", "short", zone=True) == "04/12/2026 14:15 CET"
        assert when(summer, "en", "Europe/Paris", "short", zone=True).endswith("3:15\u202fPM CEST")
        assert when(winter, "fr", "UTC", "short", zone=True).endswith("13:15 UTC")
        assert "CET" not in when(winter, "fr", "Europe/Paris", "short")

    def test_i18n_imports_nothing_of_mail_or_web(self) -> None:
        code = (
            "import sys, mailflow.i18n; "
            "print(sorted(m for m in sys.modules if m.startswith(('mailflow.mail', "
            "'mailflow.web', 'mailflow.services'))))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        )
        assert out.stdout.strip() == "[]"


class TestPageWording:
    def test_markup_built_in_a_template_is_kept_and_the_message_escaped(self) -> None:
        from mailflow.mail.templates import templates_root
        from mailflow.web.pages import Pages, _worded

        messages = {"k": "From {version} & on", "p": "<{x}>"}
        env = Pages(templates_root(), "Europe/Paris").env
        page = env.from_string(
            "{% set v %}<strong>{{ n }}</strong>{% endset %}"
            '{{ t("k", version=v) }}|{{ t("p", x=n) }}'
        )
        html = page.render(t=lambda key, **values: _worded(messages[key], values), n="<1>")
        assert html == "From <strong>&lt;1&gt;</strong> &amp; on|&lt;&lt;1&gt;&gt;"
