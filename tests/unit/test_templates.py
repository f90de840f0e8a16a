"""The shipped email templates: every key with files renders in fr and en, safely and completely.

The sample context is built the way ``mailflow.services.notify`` builds the real one (its
``sale_context``, then ``payment`` and ``event`` for transitions, ``links`` for the seller's
order emails, ``rate`` for the seller's cancellation notice), and the tier emails' the way
``mailflow.services.policy.evaluate`` builds it (from ``decide`` and ``rate_context``), so a
template that uses a variable the code does not provide fails here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from mailflow.config import PolicySettings
from mailflow.domain.policy import REINSTATED_EMAIL, TIER_EMAILS, Counts, Standing, Tier, decide
from mailflow.mail import formatting
from mailflow.mail.templates import Renderer, TemplateError, one_line, templates_root
from mailflow.services import notify, policy
from mailflow.store.models import Buyer, Order, Sale, Seller
from mailflow.store.records import SaleFacts

LOCALES = ("fr", "en")
LINK_KEYS = ("seller_new_sale", "seller_deadline_reminder")
TRANSITION_KEYS = frozenset(key for notices in notify.NOTICES.values() for _, key in notices)
MESSAGE_KEYS = ("buyer_sale_cancelled", "support_sale_cancelled")
LOGIN_KEY = "seller_login_link"
UNREACHABLE_KEY = "support_seller_unreachable"
CONVERSATION_KEYS = ("buyer_seller_message", "seller_buyer_message")
COMMAND_KEY = "seller_command_result"
CONVERSATION_BODY = "Bonjour,\nJe l'expédie demain (délai < 24 h).\nBien à vous"
LOGIN_URL = "https://market.example/seller/login/eyJzZWxsZXIiOjcsIm4iOiJxM2cifQ.Zx1a2b.Lk9-login"
REFUSE_TEXT = {
    "fr": "Cliquez ici si l'article n'est plus disponible",
    "en": "Click here if the article is no longer available",
}
AMOUNT = {"fr": "12,50\u00a0€", "en": "€12.50"}
EVIL_MESSAGE = "Désolé <script>alert(1)</script>\nLigne 2"
VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
TAG = re.compile(r"</?[A-Za-z][^>]*>")
STYLE = re.compile(r"<style>(.*?)</style>", re.S)

# Times as the store holds them: naive UTC.
CREATED = datetime(2026, 11, 25, 8, 0)
EVENT_AT = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)

# key → (sale status, payment state, reason, event actor, event channel)
STATES: dict[str, tuple[str, str | None, str | None, str | None, str | None]] = {
    "seller_new_sale": ("pending", None, None, None, None),
    "seller_deadline_reminder": ("pending", None, None, None, None),
    "buyer_sale_accepted": ("accepted", "captured", None, "seller", "email-link"),
    "buyer_sale_refused": ("refused", "released", "out_of_stock", "seller", "email-link"),
    "buyer_sale_expired": ("expired", "released", None, "system", "sweep"),
    "buyer_sale_cancelled": ("cancelled", "refunded", "cannot_ship", "seller", "portal"),
    "support_sale_cancelled": ("cancelled", "refunded", "cannot_ship", "seller", "portal"),
    "seller_sale_cancelled": ("cancelled", "refunded", "cannot_ship", "seller", "portal"),
    "buyer_withdrawal_confirmed": ("withdrawn", "refunded", None, "support", "cli"),
    "seller_command_result": ("refused", None, "out_of_stock", None, None),
    "buyer_seller_message": ("accepted", None, None, None, None),
    "seller_buyer_message": ("accepted", None, None, None, None),
}

# The seller's sales in the window when a sale email carries ``rate`` (1 of 24: 4.2 %).
SALE_COUNTS = Counts(total=25, cancelled=1, withdrawn=1)

# Tier emails (sent by ``policy.evaluate``): key → (standing before, sales in the window).
NOW = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
OVER_COUNTS = Counts(total=33, cancelled=2, refused=1, withdrawn=1)  # 2 of 32: 6.2 %
POLICY_CASES: dict[str, tuple[Standing, Counts]] = {
    "seller_rate_warning": (Standing(), SALE_COUNTS),
    "seller_rate_alert": (Standing(Tier.WARNING, NOW - timedelta(days=2)), OVER_COUNTS),
    "seller_suspended": (Standing(Tier.OVER, NOW - timedelta(days=8)), OVER_COUNTS),
    "seller_reinstated": (
        Standing(Tier.SUSPENDED, NOW - timedelta(days=14), NOW - timedelta(minutes=1)),
        Counts(total=40, cancelled=1),
    ),
}


def policy_context(
    key: str,
    settings: PolicySettings | None = None,
    before: Standing | None = None,
    counts: Counts | None = None,
) -> dict[str, Any]:
    """A tier email's context, built as ``policy.evaluate`` builds it."""
    settings = settings or PolicySettings()
    default_before, default_counts = POLICY_CASES[key]
    before = before or default_before
    counts = counts or default_counts
    ctx = cast(Any, SimpleNamespace(policy=settings))
    decision = decide(before, counts, policy.rules_of(settings), NOW)
    assert key in decision.emails, f"{key} is not sent from {before} with {counts}"
    after = decision.standing
    return {
        "seller": {"id": 7, "name": "Librairie Dupont", "email": "ventes@librairie-dupont.example"},
        "rate": policy.rate_context(ctx, counts),
        "tier": after.tier.value,
        "suspended_until": after.suspended_until,
        "grace_ends": (after.since or NOW) + timedelta(days=settings.grace_days),
        "now": NOW,
    }


def sample_context(
    key: str, settings: PolicySettings | None = None, **sale_overrides: Any
) -> dict[str, Any]:
    """A realistic context for ``key``, shaped as the sending code shapes it."""
    if key in POLICY_CASES:
        return policy_context(key, settings)
    if key == LOGIN_KEY:
        return login_context()
    settings = settings or PolicySettings()
    if key == UNREACHABLE_KEY:
        context = sample_context("seller_new_sale", settings, **sale_overrides)
        del context["links"]
        context["bounce"] = {
            "address": "ventes@librairie-dupont.example",
            "email": "seller_new_sale",
            "status": "5.1.1",
            "diagnostic": "550 5.1.1 ventes@librairie-dupont.example: mailbox unknown",
            "at": EVENT_AT,
        }
        return context
    status, payment_state, reason, actor, channel = STATES[key]
    cancelled = status == "cancelled"
    fields: dict[str, Any] = {
        "id": 12,
        "order_id": 3,
        "seller_id": 7,
        "listing_id": 5,
        "sku": "LPP-1943",
        "title": "Le Petit Prince (édition 1999)",
        "quantity": 1,
        "unit_price_cents": 1250,
        "amount_cents": 1250,
        "currency": "EUR",
        "status": status,
        "reason": reason,
        "message": (
            "Bonjour,\nLe dernier exemplaire a été abîmé pendant l'emballage.\nToutes mes excuses."
            if cancelled
            else None
        ),
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    fields.update(sale_overrides)
    sale = Sale(**fields)
    seller = Seller(
        id=7, name="Librairie Dupont", email="ventes@librairie-dupont.example", created_at=CREATED
    )
    buyer = Buyer(id=4, name="Éloïse Müller", email="eloise@example.org", created_at=CREATED)
    order = Order(
        id=3, external_id="CMD-2026-0042", buyer_id=4, request_hash="0" * 64, created_at=CREATED
    )
    ctx = cast(Any, SimpleNamespace(policy=settings))
    context = notify.sale_context(ctx, SaleFacts(sale, seller, order, buyer, None))
    if key in CONVERSATION_KEYS:
        return {
            "sale": context["sale"],
            "order": context["order"],
            "message": {"author": "seller", "body": CONVERSATION_BODY, "at": EVENT_AT},
            "seller_name": "Librairie Dupont",
            "buyer_name": "Éloïse Müller",
        }
    if key in (*LINK_KEYS, COMMAND_KEY):
        context["reply_commands"] = True
        base = "https://market.example/s/"
        context["links"] = {
            "accept": base + "eyJzIjoxMiwiYSI6ImFjY2VwdCJ9.Zx1a2b.q8Kd-accept",
            "refuse": base + "eyJzIjoxMiwiYSI6InJlZnVzZSJ9.Zx1a2b.Wm3_refuse",
            "view": base + "eyJzIjoxMiwiYSI6InZpZXcifQ.Zx1a2b.p0Lv-view",
        }
    if key in TRANSITION_KEYS:
        refunded = payment_state == "refunded"
        context["payment"] = {
            "state": payment_state,
            "amount_cents": 1250,
            "refunded_cents": 1250 if refunded else 0,
            "commission_cents": 125 if cancelled else 0,
            "currency": "EUR",
        }
        context["event"] = {"actor": actor, "channel": channel, "at": EVENT_AT}
    if key == "seller_sale_cancelled":
        context["rate"] = policy.rate_context(ctx, SALE_COUNTS)
    if key == COMMAND_KEY:
        context["command"] = {"action": "refuse", "outcome": "done"}
    return context


def login_context(valid_minutes: int = 15) -> dict[str, Any]:
    """The sign-in email's context, as ``services.accounts.request_login_link`` builds it."""
    return {
        "seller": {"id": 7, "name": "Librairie Dupont", "email": "ventes@librairie-dupont.example"},
        "login_url": LOGIN_URL,
        "valid_minutes": valid_minutes,
    }


def percent(ratio: float, locale: str) -> str:
    return formatting.percent(ratio, locale)


def when(moment: datetime, locale: str) -> str:
    return formatting.when(moment, locale, "Europe/Paris", "short")


def shipped_keys(locale: str) -> set[str]:
    folder = templates_root() / "email" / locale
    return {path.name.removesuffix(".subject.j2") for path in folder.glob("*.subject.j2")}


KEYS = sorted(shipped_keys("fr") | shipped_keys("en"))
CASES = [(key, locale) for key in KEYS for locale in LOCALES]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(templates_root(), "Europe/Paris")


class StrictHTML(HTMLParser):
    """Checks that every element is closed in order; collects links and external references."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.anchors: list[tuple[str, str]] = []
        self.external: list[str] = []
        self._anchor: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in {"img", "link", "script", "iframe", "object"} or "src" in values:
            self.external.append(self.get_starttag_text() or tag)
        if tag == "a":
            self._anchor = (values.get("href") or "", [])
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_ELEMENTS:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> at {self.getpos()} closes {self.stack[-1:]}")
            return
        self.stack.pop()
        if tag == "a" and self._anchor is not None:
            href, text = self._anchor
            self.anchors.append((href, " ".join("".join(text).split())))
            self._anchor = None

    def handle_data(self, data: str) -> None:
        if self._anchor is not None:
            self._anchor[1].append(data)


def parse_html(html: str) -> StrictHTML:
    parser = StrictHTML()
    parser.feed(html)
    parser.close()
    assert not parser.errors, parser.errors
    assert not parser.stack, f"unclosed elements: {parser.stack}"
    return parser


def test_both_locales_ship_the_same_keys_including_the_cancellation_flow() -> None:
    assert shipped_keys("fr") == shipped_keys("en")
    assert set(STATES) <= set(KEYS), "a key of notify has no template files"
    tier_keys = {key for key in TIER_EMAILS.values() if key} | {REINSTATED_EMAIL}
    assert tier_keys <= set(KEYS), "a tier email of the policy has no template files"
    assert set(POLICY_CASES) == tier_keys
    known = set(STATES) | set(POLICY_CASES) | {LOGIN_KEY, UNREACHABLE_KEY}
    assert set(KEYS) <= known, "give the new key a sample context"


@pytest.mark.parametrize(("key", "locale"), CASES)
def test_renders_a_complete_email(renderer: Renderer, key: str, locale: str) -> None:
    email = renderer.render(key, locale, sample_context(key))

    assert email.subject.strip() and "\n" not in email.subject
    raw_subject = renderer.env.get_template(f"email/{locale}/{key}.subject.j2")
    assert "\n" not in raw_subject.render({**sample_context(key), "locale": locale}).strip()

    assert not TAG.search(email.text), TAG.search(email.text)
    assert "None" not in email.text and "None" not in email.html

    parsed = parse_html(email.html)
    assert email.html.lstrip().startswith("<!DOCTYPE html>")
    assert f'<html lang="{locale}">' in email.html
    assert not parsed.external, parsed.external
    # The one <style> left after inlining holds the dark mode's rules, nothing else.
    assert [s.split("{", 1)[0].strip() for s in STYLE.findall(email.html)] == [
        "@media (prefers-color-scheme: dark)"
    ]
    assert '<meta name="color-scheme" content="light dark">' in email.html

    if key in POLICY_CASES:
        rate = sample_context(key)["rate"]
        for shown in (percent(rate["value"], locale), percent(rate["threshold"], locale)):
            assert shown in email.text and shown in email.html
    elif key == LOGIN_KEY:
        assert LOGIN_URL in email.text and LOGIN_URL in dict(parsed.anchors)
    elif key in CONVERSATION_KEYS:
        # The words as text: every line, the markup escaped in the HTML part.
        assert CONVERSATION_BODY in email.text
        assert "Je l'expédie demain (délai &lt; 24 h)." in email.html.replace("&#39;", "'")
    elif key == COMMAND_KEY:
        assert "REFUSE" in email.text.upper() and "/s/" in email.text
    else:
        assert AMOUNT[locale] in email.text
        assert AMOUNT[locale] in email.html


@pytest.mark.parametrize("key", LINK_KEYS)
@pytest.mark.parametrize("locale", LOCALES)
def test_seller_links_in_both_parts(renderer: Renderer, key: str, locale: str) -> None:
    context = sample_context(key)
    email = renderer.render(key, locale, context)
    anchors = dict(parse_html(email.html).anchors)
    for url in context["links"].values():
        assert url in email.text
        assert url in anchors
    assert anchors[context["links"]["refuse"]] == REFUSE_TEXT[locale]
    refuse_line = re.escape(REFUSE_TEXT[locale]) + r" ?:\n" + re.escape(context["links"]["refuse"])
    assert re.search(refuse_line, email.text), "the refuse link is not under its text"


def test_the_french_refuse_text_is_exact(renderer: Renderer) -> None:
    for key in LINK_KEYS:
        email = renderer.render(key, "fr", sample_context(key))
        assert "Cliquez ici si l'article n'est plus disponible" in email.text
        assert ">Cliquez ici si l'article n'est plus disponible</a>" in email.html


@pytest.mark.parametrize("key", MESSAGE_KEYS)
@pytest.mark.parametrize("locale", LOCALES)
def test_the_sellers_message_is_text_never_html(renderer: Renderer, key: str, locale: str) -> None:
    email = renderer.render(key, locale, sample_context(key, message=EVIL_MESSAGE))
    assert EVIL_MESSAGE in email.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\nLigne 2" in email.html
    assert "<script" not in email.html
    quoted = r'class="quote"[^>]*white-space: ?pre-wrap[^>]*>Désolé &lt;script&gt;'
    assert re.search(quoted, email.html)
    parse_html(email.html)


@pytest.mark.parametrize("message", [None, "", "  \n "])
@pytest.mark.parametrize("locale", LOCALES)
def test_no_message_block_without_a_message(
    renderer: Renderer, locale: str, message: str | None
) -> None:
    email = renderer.render(
        "buyer_sale_cancelled", locale, sample_context("buyer_sale_cancelled", message=message)
    )
    assert "pre-wrap" not in email.html
    label = "Message du vendeur" if locale == "fr" else "Message from the seller"
    assert label not in email.text and label not in email.html
    assert "None" not in email.text


def test_the_cancellation_shows_reason_and_refund(renderer: Renderer) -> None:
    email = renderer.render("buyer_sale_cancelled", "fr", sample_context("buyer_sale_cancelled"))
    assert "Motif : expédition impossible" in email.text
    assert "remboursé(e) de 12,50\u00a0€" in email.text
    support = renderer.render(
        "support_sale_cancelled", "fr", sample_context("support_sale_cancelled")
    )
    for value in ("12", "CMD-2026-0042", "Librairie Dupont", "ventes@librairie-dupont.example"):
        assert value in support.text and value in support.html
    assert "eloise@example.org" in support.text and "expédition impossible" in support.text


@pytest.mark.parametrize("locale", LOCALES)
def test_seller_confirmation_shows_commission_rate_and_threshold(
    renderer: Renderer, locale: str
) -> None:
    key = "seller_sale_cancelled"
    commission = {"fr": "1,25\u00a0€", "en": "€1.25"}[locale]
    email = renderer.render(key, locale, sample_context(key))
    rate, threshold = percent(1 / 24, locale), percent(0.05, locale)
    assert rate == {"fr": "4,2\u00a0%", "en": "4.2%"}[locale]
    for part in (email.text, email.html):
        assert commission in part and rate in part and threshold in part
    parse_html(email.html)

    # The ``rate is defined`` guards still hold: no rate, no threshold, still renders.
    context = sample_context(key)
    del context["rate"]
    without = renderer.render(key, locale, context)
    assert commission in without.text and commission in without.html
    assert rate not in without.text and threshold not in without.text
    assert rate not in without.html and threshold not in without.html
    parse_html(without.html)


@pytest.mark.parametrize("locale", LOCALES)
def test_seller_confirmation_shows_the_configured_threshold(
    renderer: Renderer, locale: str
) -> None:
    key = "seller_sale_cancelled"
    email = renderer.render(key, locale, sample_context(key, PolicySettings(threshold=0.07)))
    seven, five = percent(0.07, locale), percent(0.05, locale)
    if locale == "fr":
        assert seven == "7\u00a0%"
    for part in (email.text, email.html):
        assert seven in part and five not in part


def test_the_alert_states_threshold_rate_and_grace_end_in_french(renderer: Renderer) -> None:
    context = sample_context("seller_rate_alert")
    email = renderer.render("seller_rate_alert", "fr", context)
    threshold, rate = percent(0.05, "fr"), percent(context["rate"]["value"], "fr")
    assert threshold == "5\u00a0%" and rate == "6,2\u00a0%"
    grace_end = when(context["grace_ends"], "fr")
    assert grace_end == "03/12/2026 15:30"  # alerted on 26/11 14:30 UTC + 7 days, in Paris
    for part in (email.text, email.html):
        assert threshold in part and rate in part and grace_end in part
        assert "service client" in part and "annonces à jour" in part
    # Subjects are folded onto one line: their non-breaking spaces become plain spaces.
    assert one_line(threshold) in email.subject and one_line(rate) in email.subject


@pytest.mark.parametrize("locale", LOCALES)
def test_the_suspension_states_its_end_and_why(renderer: Renderer, locale: str) -> None:
    context = sample_context("seller_suspended")
    assert context["suspended_until"] == NOW + timedelta(days=14)
    email = renderer.render("seller_suspended", locale, context)
    end = when(context["suspended_until"], locale)
    assert one_line(end) in email.subject and end in email.text and end in email.html
    for shown in (percent(context["rate"]["value"], locale), percent(0.05, locale)):
        assert shown in email.text and shown in email.html


@pytest.mark.parametrize("locale", LOCALES)
def test_the_reinstatement_warns_when_still_over(renderer: Renderer, locale: str) -> None:
    calm = renderer.render("seller_reinstated", locale, sample_context("seller_reinstated"))
    still_over = policy_context("seller_reinstated", counts=OVER_COUNTS)
    assert still_over["tier"] == "over"
    over = renderer.render("seller_reinstated", locale, still_over)
    grace_end = when(still_over["grace_ends"], locale)
    assert grace_end in over.text and grace_end in over.html
    assert grace_end not in calm.text
    parse_html(over.html)


@pytest.mark.parametrize("key", sorted(POLICY_CASES))
@pytest.mark.parametrize("locale", LOCALES)
def test_tier_emails_when_refusals_count(renderer: Renderer, key: str, locale: str) -> None:
    settings = PolicySettings(count_refusals=True, window_days=30.0)
    before, counts = POLICY_CASES[key]
    email = renderer.render(key, locale, policy_context(key, settings, before, counts))
    assert "None" not in email.text and "30.0" not in email.text and "30,0" not in email.text
    if key != "seller_reinstated":
        label = {"fr": "refusées ou expirées", "en": "refused or expired"}[locale]
        assert label in email.text and label in email.html
    parse_html(email.html)


@pytest.mark.parametrize("locale", LOCALES)
def test_withdrawal_says_refunded_or_released(renderer: Renderer, locale: str) -> None:
    key = "buyer_withdrawal_confirmed"
    refunded = renderer.render(key, locale, sample_context(key))
    released_context = sample_context(key)
    released_context["payment"].update(state="released", refunded_cents=0)
    released = renderer.render(key, locale, released_context)
    words = {"fr": ("remboursé(e)", "pas débité(e)"), "en": ("refunded", "not be charged")}
    assert words[locale][0] in refunded.text and words[locale][1] not in refunded.text
    assert words[locale][1] in released.text and words[locale][0] not in released.text


@pytest.mark.parametrize("locale", LOCALES)
def test_the_login_link_says_where_it_leads_how_long_and_once(
    renderer: Renderer, locale: str
) -> None:
    email = renderer.render(LOGIN_KEY, locale, login_context())
    anchors = parse_html(email.html).anchors
    assert LOGIN_URL in email.text and (LOGIN_URL, LOGIN_URL) in anchors
    words = {
        "fr": ("« Toutes les commandes »", "15 minutes", "une seule fois", "ignorez"),
        "en": ("order list", "15 minutes", "only once", "ignore this email"),
    }[locale]
    for word in words:
        assert word in email.text and word in email.html
    assert "Toutes les commandes" in email.subject or locale == "en"

    one = renderer.render(LOGIN_KEY, locale, login_context(valid_minutes=1))
    assert "1 minute " in one.text and "1 minutes" not in one.text


def test_dates_are_in_the_configured_time_zone(renderer: Renderer) -> None:
    # created 25/11 08:00 UTC + 48 h = 27/11 09:00 in Paris
    email = renderer.render(
        "seller_deadline_reminder", "fr", sample_context("seller_deadline_reminder")
    )
    assert "27/11/2026 09:00" in email.subject
    assert "27/11/2026 09:00" in email.text


@pytest.mark.parametrize(("key", "locale"), CASES)
def test_a_missing_variable_is_an_error(renderer: Renderer, key: str, locale: str) -> None:
    seller_only = key in POLICY_CASES or key == LOGIN_KEY
    group, field = ("seller", "name") if seller_only else ("sale", "title")
    context = sample_context(key)
    del context[group]
    with pytest.raises(TemplateError):
        renderer.render(key, locale, context)

    context = sample_context(key)
    del context[group][field]
    with pytest.raises(TemplateError):
        renderer.render(key, locale, context)


def test_every_shipped_key_is_documented() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "templates.md").read_text(encoding="utf-8")
    for key in KEYS:
        assert f"`{key}`" in docs
