"""The seller pages in a real headless Chromium against a live uvicorn (SQLite).

A seller logs in from the emailed link, refuses a sale from "Toutes les commandes", cancels
another with a message that the buyer then receives, and reads the rate chart. Every page is
checked for what a browser alone can tell: no CSP violation or script error, nothing loaded
from another host, a phone-width list without sideways scrolling, forms usable from the
keyboard. Screenshots of each page are saved as ``seller-*.png`` (``--screenshots``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from mailflow.bootstrap import System
from mailflow.domain.sales import Action, Actor, Channel, Reason
from mailflow.schemas import OrderIn, SellerIn
from mailflow.services import orders, sales, sellers
from mailflow.services.context import ServiceContext
from mailflow.store.models import OutboxMessage
from tests.support import (
    MovableClock,
    RelayHandler,
    axe_violations,
    context_options,
    deliver,
    path_of,
    text_of,
    wait_for,
)

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the browser fixture skips, or fails under CI
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

SELLER = {"name": "Librairie des Quais", "email": "contact@librairie-des-quais.example"}
BOOKS = [
    "Le Comte de Monte-Cristo",
    "Les Trois Mousquetaires",
    "Vingt mille lieues sous les mers",
    "Le Rouge et le Noir",
    "La Peste",
    "Bel-Ami",
    "Le Horla",
    "Candide",
    "Notre-Dame de Paris",
    "Les Fleurs du mal",
    "Le Grand Meaulnes",
    "Thérèse Raquin",
]
BUYERS = ["Camille Martin", "Léa Bernard", "Hugo Petit", "Inès Robert", "Louis Durand"]
HISTORY_DAYS = 90
# Days (before today) whose first sale the seller cancels the next morning: the rate climbs
# into the warning band, stays under the threshold, and comes back down.
CANCEL_DAYS = {66, 52, 40, 18, 6}
WITHDRAW_DAYS = {30}


@dataclass
class Shop:
    seller_id: int
    pending: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    buyers: dict[int, str] = field(default_factory=dict)


def _order(ctx: ServiceContext, shop: Shop, n: int, titles: list[str]) -> list[int]:
    buyer = BUYERS[n % len(BUYERS)]
    email = f"{buyer.split()[0].lower().replace('è', 'e').replace('é', 'e')}.{n}@mail.example"
    body = {
        "external_id": f"MKT-{240000 + n}",
        "buyer": {"email": email, "name": buyer, "locale": "fr"},
        "items": [
            {
                "seller_id": shop.seller_id,
                "sku": f"LQ-{1000 + n * 3 + i}",
                "title": title,
                "quantity": 1 + (n + i) % 4 // 3,
                "unit_price": f"{7 + (n * 7 + i * 3) % 23}.{(n * 37) % 100:02d}",
            }
            for i, title in enumerate(titles)
        ],
    }
    result = orders.place_order(ctx, OrderIn.model_validate(body), None)
    ids = [int(s["id"]) for s in result.body["sales"]]
    for sale_id in ids:
        shop.buyers[sale_id] = email
    return ids


def _act(ctx: ServiceContext, sale_id: int, action: Action, **details: Any) -> None:
    actor = Actor.SUPPORT if action is Action.WITHDRAW else Actor.API
    sales.transition(ctx, sale_id, action, actor=actor, channel=Channel.API, **details)


def seed(system: System) -> Shop:
    """Ninety days of a bookshop's sales, through the services, on the system's own clock."""
    ctx = system.services
    clock = system.clock
    assert isinstance(clock, MovableClock)
    today = clock.now
    seller = sellers.create_seller(ctx, SellerIn(**SELLER, locale="fr"))
    other = sellers.create_seller(
        ctx, SellerIn(name="Autre boutique", email="autre@shop.example", locale="fr")
    )
    shop = Shop(seller_id=int(seller["id"]))
    yesterday: list[int] = []
    cancel_next: set[int] = set()
    n = 0

    def settle_yesterday() -> None:
        for sale_id in yesterday:
            if sale_id in cancel_next:
                _act(ctx, sale_id, Action.CANCEL, reason=Reason.CANNOT_SHIP, message="")
            else:
                _act(ctx, sale_id, Action.SHIP)
        cancel_next.clear()

    for day in range(HISTORY_DAYS, 0, -1):
        clock.now = today - timedelta(days=day, hours=1)
        settle_yesterday()
        clock.now += timedelta(hours=2)
        per_day = 1 + day % 2
        yesterday = _order(ctx, shop, n, [BOOKS[(n + i) % len(BOOKS)] for i in range(per_day)])
        n += 1
        for sale_id in yesterday:
            _act(ctx, sale_id, Action.ACCEPT)
        if day in CANCEL_DAYS:
            cancel_next.add(yesterday[0])
        if day in WITHDRAW_DAYS:
            _act(ctx, yesterday[-1], Action.WITHDRAW, note="the buyer changed their mind")
            yesterday = yesterday[:-1]
    clock.now = today - timedelta(hours=6)
    settle_yesterday()
    for title in ("Germinal", "Les Misérables"):
        clock.now += timedelta(minutes=40)
        (sale_id,) = _order(ctx, shop, n, [title])
        n += 1
        _act(ctx, sale_id, Action.ACCEPT)
        shop.accepted[title] = sale_id
    for title in ("Madame Bovary", "L'Étranger", "Le Petit Prince"):
        clock.now += timedelta(minutes=50)
        (sale_id,) = _order(ctx, shop, n, [title])
        n += 1
        shop.pending[title] = sale_id
    clock.now += timedelta(minutes=10)
    _order(ctx, Shop(seller_id=int(other["id"])), n, ["Un livre d'un autre vendeur"])
    clock.now = today
    return shop


# Fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop(live_system: System) -> Shop:
    return seed(live_system)


@dataclass
class Tab:
    """A page in its own browser context, and what went wrong in it."""

    page: Page
    server: str
    problems: list[str]
    missing: set[str] = field(default_factory=set)
    """Paths meant to answer 404 (a page saying so), which Chromium logs as a failed load."""

    def go(self, path: str) -> None:
        self.page.goto(self.server + path)


@pytest.fixture
def open_tab(browser: Browser, server: str, shop: Shop) -> Iterator[Any]:
    """Opens tabs (each in a fresh context); after the test, none may have logged a console
    error (a CSP violation is one), thrown a script error, or asked another host for anything."""
    opened: list[Tab] = []

    def factory(**options: Any) -> Tab:
        context = browser.new_context(**context_options(**options))
        page = context.new_page()
        page.set_default_timeout(10_000)
        tab = Tab(page, server, [])
        page.on("console", lambda m: _console(tab, m))
        page.on("pageerror", lambda e: tab.problems.append(f"script error: {e}"))
        page.on(
            "request",
            lambda r: None if r.url.startswith(server) else tab.problems.append(f"asked {r.url}"),
        )
        opened.append(tab)
        return tab

    yield factory
    for tab in opened:
        tab.page.context.close()
    assert [p for tab in opened for p in tab.problems] == []


def _console(tab: Tab, message: Any) -> None:
    url = message.location.get("url", "")
    # Chromium asks for /favicon.ico on its own; mailflow has none (a 404 that means nothing).
    expected = url.endswith("/favicon.ico") or (
        "status of 404" in message.text and url.removeprefix(tab.server) in tab.missing
    )
    if message.type == "error" and not expected:
        tab.problems.append(f"console: {message.text} ({url})")


def _outbox_count(system: System, template: str) -> int:
    with system.db.read() as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.template == template)
            ).scalar_one()
        )


def _delivered(
    system: System, relay: tuple[RelayHandler, int], template: str, to: str
) -> list[Any]:
    # Playwright's sync API keeps an event loop running in this thread: deliver from another.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(deliver, system).result()
    return [
        m
        for m in relay[0].messages()
        if m["X-Mailflow-Template"] == template and m["To"].addresses[0].addr_spec == to
    ]


def _log_in(tab: Tab, system: System, relay: tuple[RelayHandler, int]) -> None:
    """Ask for a link on the login page, read it from the relay, open it, press the button."""
    page = tab.page
    links_before = _outbox_count(system, "seller_login_link")
    tab.go("/seller/login")
    page.get_by_label("Adresse e-mail").fill(SELLER["email"])
    page.get_by_role("button", name="Recevoir un lien de connexion").click()
    expect(page.get_by_role("heading", name="Vérifiez votre messagerie")).to_be_visible()
    # The link is made after the answer went out (the page's timing says nothing).
    wait_for(lambda: _outbox_count(system, "seller_login_link") > links_before)
    (message,) = _delivered(system, relay, "seller_login_link", SELLER["email"])[-1:]
    (link,) = re.findall(r"https?://\S+/seller/login/\S+", text_of(message))
    tab.go(path_of(link))
    expect(
        page.get_by_role("heading", name="Se connecter à « Toutes les commandes »")
    ).to_be_visible()
    page.get_by_role("button", name="Me connecter").click()
    expect(page).to_have_url(f"{tab.server}/seller/sales")


@pytest.fixture(scope="module")
def signed_in(
    browser: Browser, server: str, shop: Shop, live_system: System, module_relay: Any
) -> dict[str, Any]:
    """A seller's browser state after logging in once from the emailed link."""
    context = browser.new_context(**context_options())
    tab = Tab(context.new_page(), server, [])
    _log_in(tab, live_system, module_relay)
    state = context.storage_state()
    context.close()
    return state  # type: ignore[return-value]


def _shot(page: Page, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"seller-{name}.png"), full_page=True)


def _text(value: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", value).strip()


# The seller's day ---------------------------------------------------------------------------


class TestSellerPortal:
    def test_a_seller_logs_in_from_the_emailed_link(
        self,
        open_tab: Any,
        live_system: System,
        module_relay: tuple[RelayHandler, int],
        screenshots: Path,
    ) -> None:
        tab = open_tab()
        page = tab.page
        tab.go("/seller/login")
        expect(page.get_by_label("Adresse e-mail")).to_be_focused()
        _shot(page, screenshots, "login")
        # The link's page is a button: opening it (as a mail scanner does) logs no one in.
        _log_in(tab, live_system, module_relay)
        expect(page.get_by_role("status").first).to_contain_text(
            "Bonjour Librairie des Quais, vous êtes connecté(e)."
        )
        expect(page.get_by_role("link", name="Toutes les commandes")).to_have_attribute(
            "aria-current", "page"
        )

    def test_a_seller_refuses_a_sale_from_the_list(
        self,
        open_tab: Any,
        signed_in: dict[str, Any],
        live_system: System,
        module_relay: tuple[RelayHandler, int],
        shop: Shop,
        screenshots: Path,
    ) -> None:
        tab = open_tab(storage_state=signed_in)
        page = tab.page
        tab.go("/seller/sales")
        expect(page.get_by_role("heading", name="Toutes les commandes")).to_be_visible()
        expect(page.locator("table.sales tbody tr")).to_have_count(20)
        _shot(page, screenshots, "list")

        sale_id = shop.pending["Le Petit Prince"]
        page.get_by_role("link", name="Le Petit Prince").click()
        expect(page).to_have_url(f"{tab.server}/seller/sales/{sale_id}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(f"Vente n° {sale_id}")
        _shot(page, screenshots, "sale")

        # From the keyboard: Tab to the link of the guide, open it, choose, confirm.
        summary = page.locator("summary", has_text="Cliquez ici si l'article n'est plus disponible")
        for _ in range(30):
            page.keyboard.press("Tab")
            if summary.evaluate("el => el === document.activeElement"):
                break
        expect(summary).to_be_focused()
        page.keyboard.press("Enter")
        reason = page.get_by_label("Motif", exact=True)
        expect(reason).to_be_visible()
        page.keyboard.press("Tab")
        expect(reason).to_be_focused()
        reason.select_option("out_of_stock")
        page.keyboard.press("Tab")
        confirm = page.get_by_role("button", name="Confirmer : l'article n'est plus disponible")
        expect(confirm).to_be_focused()
        page.keyboard.press("Enter")

        expect(page.get_by_role("status").first).to_have_text(
            "La vente est refusée. L'acheteur en est informé."
        )
        expect(page.locator(".facts .status")).to_have_text("refusée")
        buyer = shop.buyers[sale_id]
        (notice,) = _delivered(live_system, module_relay, "buyer_sale_refused", buyer)
        assert "Le Petit Prince" in text_of(notice)

    def test_a_seller_cancels_a_sale_with_a_message_the_buyer_receives(
        self,
        open_tab: Any,
        signed_in: dict[str, Any],
        live_system: System,
        module_relay: tuple[RelayHandler, int],
        shop: Shop,
        screenshots: Path,
    ) -> None:
        tab = open_tab(storage_state=signed_in)
        page = tab.page
        tab.go("/seller/sales")
        page.get_by_label("État").select_option("accepted")
        page.get_by_role("button", name="Filtrer").click()
        expect(page).to_have_url(re.compile(r"status=accepted"))
        sale_id = shop.accepted["Les Misérables"]
        page.get_by_role("link", name="Les Misérables").click()
        expect(page).to_have_url(f"{tab.server}/seller/sales/{sale_id}")

        page.locator("summary", has_text="Annuler la vente de cet article").click()
        page.get_by_label("Motif d'annulation (communiqué à l'acheteur)").select_option(
            "cannot_ship"
        )
        message = (
            "Bonjour,\nle dernier exemplaire a été abîmé pendant l'emballage : je préfère "
            "annuler plutôt que vous l'envoyer ainsi.\nToutes mes excuses, Marie."
        )
        page.get_by_label("Message à l'acheteur (conseillé)").fill(message)
        page.get_by_role("button", name="Voir l'e-mail que recevra l'acheteur").click()

        expect(page.get_by_role("heading", name="Aperçu de l'e-mail à l'acheteur")).to_be_visible()
        preview = page.locator("pre.email-text")
        expect(preview).to_contain_text("Motif : expédition impossible")
        expect(preview).to_contain_text("le dernier exemplaire a été abîmé pendant l'emballage")
        shown = preview.inner_text()
        _shot(page, screenshots, "cancel-preview")
        assert _outbox_count(live_system, "buyer_sale_cancelled") == 5  # nothing sent yet

        page.get_by_role("button", name="Confirmer l'annulation de la vente").click()
        expect(page).to_have_url(f"{tab.server}/seller/sales/{sale_id}")
        expect(page.get_by_role("status").first).to_contain_text("La vente est annulée.")
        expect(page.locator(".facts .status")).to_have_text("annulée")
        expect(page.locator(".facts dd.message")).to_have_text(message)

        buyer = shop.buyers[sale_id]
        (email,) = _delivered(live_system, module_relay, "buyer_sale_cancelled", buyer)
        received = text_of(email)
        assert message in received
        assert "Motif : expédition impossible" in received
        assert _text(received) == _text(shown)

    def test_a_seller_writes_to_the_buyer_from_the_sale_page(
        self,
        open_tab: Any,
        signed_in: dict[str, Any],
        live_system: System,
        module_relay: tuple[RelayHandler, int],
        shop: Shop,
    ) -> None:
        tab = open_tab(storage_state=signed_in)
        page = tab.page
        sale_id = shop.pending["Madame Bovary"]
        tab.go(f"/seller/sales/{sale_id}")
        expect(page.get_by_role("heading", name="Conversation avec l'acheteur")).to_be_visible()
        words = "Bonjour,\nje l'expédie demain matin <sans faute>."
        page.get_by_label("Écrire à l'acheteur").fill(words)
        page.get_by_role("button", name="Envoyer").click()
        expect(page.get_by_role("status").first).to_contain_text("Message envoyé à l'acheteur.")
        expect(page.locator("#conversation article").last).to_contain_text(
            "je l'expédie demain matin <sans faute>."
        )
        buyer = shop.buyers[sale_id]
        (email,) = _delivered(live_system, module_relay, "buyer_seller_message", buyer)
        assert "je l'expédie demain matin <sans faute>." in text_of(email)

    def test_the_seller_reads_the_rate_chart(
        self, open_tab: Any, signed_in: dict[str, Any], screenshots: Path
    ) -> None:
        tab = open_tab(storage_state=signed_in)
        page = tab.page
        tab.go("/seller/sales")
        nav = page.get_by_role("navigation", name="Navigation")
        nav.get_by_role("link", name="Mon taux d'annulation").click()
        expect(page.get_by_role("heading", name="Mon taux d'annulation")).to_be_visible()
        chart = page.locator("svg.rate-chart")
        expect(chart).to_be_visible()
        assert _text(chart.locator("text.threshold-label").text_content() or "") == "5 %"
        expect(chart.locator("circle.dot")).to_have_count(60)
        band = chart.locator("rect.zone-warning").bounding_box()
        assert band is not None and band["height"] > 5
        threshold_line = chart.locator("line.threshold").bounding_box()
        assert threshold_line is not None and abs(threshold_line["y"] - band["y"]) < 3
        expect(page.locator(".tier-warning, .tier-over")).to_be_visible()
        expect(
            page.get_by_role("heading", name="Les ventes qui comptent dans votre taux")
        ).to_be_visible()
        _shot(page, screenshots, "stats")

    def test_the_list_on_a_phone(
        self, open_tab: Any, signed_in: dict[str, Any], screenshots: Path
    ) -> None:
        tab = open_tab(
            storage_state=signed_in,
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            device_scale_factor=1,
        )
        page = tab.page
        tab.go("/seller/sales")
        expect(page.get_by_role("heading", name="Toutes les commandes")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        expect(page.get_by_label("Rechercher")).to_be_visible()
        _shot(page, screenshots, "list-phone")

    @pytest.mark.parametrize("width", [1280, 375])
    def test_axe_finds_nothing_serious_on_the_portal_pages(
        self, open_tab: Any, signed_in: dict[str, Any], shop: Shop, width: int
    ) -> None:
        # axe-core comes in as a script tag, which the CSP refuses: these tabs bypass it (the
        # other tests check the CSP).
        viewport = {"width": width, "height": 900}
        found: list[str] = []
        signed_out = open_tab(bypass_csp=True, viewport=viewport)
        signed_out.go("/seller/login")
        found += axe_violations(signed_out.page)
        signed_out.missing.add("/seller/nothing-here")
        signed_out.go("/seller/nothing-here")  # the page of an address that is none
        found += axe_violations(signed_out.page)
        tab = open_tab(storage_state=signed_in, bypass_csp=True, viewport=viewport)
        page = tab.page
        for path in (
            "/seller/sales",
            "/seller/sales?status=accepted",
            f"/seller/sales/{shop.pending['Madame Bovary']}",
            f"/seller/sales/{shop.accepted['Germinal']}",
            "/seller/stats",
        ):
            tab.go(path)
            for summary in page.locator("details > summary").all():
                summary.click()  # the forms folded inside a sale's page are checked too
            found += axe_violations(page)
        assert found == []
