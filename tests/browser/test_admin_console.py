"""The admin console in a real headless Chromium against a live uvicorn (SQLite).

An admin edits a template, watches the live preview change, sees a problem at its line,
publishes, and the next email uses the new version; customer service records a withdrawal;
a wrong password and a form without its CSRF token get nothing; a dead message is retried
from the outbox and delivered; the inbox shows a message four ways. No page may log a console
error (a CSP violation is one), throw a script error, or ask another host for anything; on a
phone no page scrolls sideways. Screenshots are saved as ``admin-*.png`` (``--screenshots``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mailflow.bootstrap import System
from mailflow.domain.sales import Action, Actor, Channel, Reason
from mailflow.mail.inbox import InboxHandler
from mailflow.schemas import BuyerIn, ItemIn, OrderIn, SellerIn
from mailflow.services import accounts, orders, sales, sellers
from mailflow.services import console as console_service
from mailflow.services.context import ServiceContext
from tests.support import RelayHandler, axe_violations, context_options, deliver, html_of

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the browser fixture skips, or fails under CI
    expect = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ADMIN = "admin@marketplace.example"
SUPPORT = "service-client@marketplace.example"
PASSWORD = "correct horse battery staple"
MARK = "[Nouveau]"
EDIT = "/admin/templates/seller_new_sale/fr"
REFUSED_EN = "/admin/templates/buyer_sale_refused/en"
WITHDRAW_ORDER = "MKT-2026-7731"


@dataclass
class Console:
    """What the module's data holds: a few sellers and sales, mail sent and one dead."""

    shop_id: int
    paper_id: int
    to_withdraw: int
    untouched: int
    dead_message: int


def _order(ctx: ServiceContext, seller_id: int, number: str, titles: list[str]) -> list[int]:
    body = OrderIn(
        external_id=number,
        buyer=BuyerIn(email=f"{number.lower()}@mail.example", name="Camille Martin"),
        items=[
            ItemIn(
                seller_id=seller_id,
                sku=f"{number}-{i}",
                title=title,
                quantity=1,
                unit_price=Decimal("14.90"),
            )
            for i, title in enumerate(titles)
        ],
    )
    return [s["id"] for s in orders.place_order(ctx, body, None).body["sales"]]


def _act(ctx: ServiceContext, sale_id: int, action: Action, **details: Any) -> None:
    actor = Actor.SUPPORT if action is Action.WITHDRAW else Actor.SELLER
    sales.transition(ctx, sale_id, action, actor=actor, channel=Channel.API, **details)


def _deliver(system: System) -> None:
    # Playwright's sync API keeps an event loop running in this thread: deliver from another.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(deliver, system).result()


@pytest.fixture(scope="module")
def console(live_system: System, module_relay: tuple[RelayHandler, int]) -> Console:
    """Console users, three sellers with their sales, the mail delivered (the first message
    refused for good by the relay) and copied into the inbox, through the services."""
    ctx = live_system.services
    accounts.create_user(ctx, ADMIN, "admin", PASSWORD)
    accounts.create_user(ctx, SUPPORT, "support", PASSWORD)
    shop, records, paper = (
        sellers.create_seller(ctx, SellerIn(name=name, email=email, locale=locale))["id"]
        for name, email, locale in (
            ("Librairie des Canuts", "ventes@canuts.example", "fr"),
            ("Bellecour Records", "shop@bellecour-records.example", "en"),
            ("Papeterie Fourvière", "contact@papeterie-fourviere.example", "fr"),
        )
    )
    books = ["Le Petit Prince", "Germinal", "Bel-Ami", "Candide", "La Peste", "Le Horla"]
    shop_sales = _order(ctx, shop, "MKT-2026-7001", books * 4)
    record_sales = _order(ctx, records, "MKT-2026-7002", ["Kind of Blue (vinyl)"] * 21)
    for sale_id in shop_sales + record_sales:
        _act(ctx, sale_id, Action.ACCEPT)
    _act(ctx, shop_sales[0], Action.CANCEL, reason=Reason.CANNOT_SHIP, message="Abîmé.")
    _act(ctx, shop_sales[1], Action.WITHDRAW, note="The buyer called.")
    for sale_id in record_sales[:2]:
        _act(ctx, sale_id, Action.CANCEL, reason=Reason.PRICING_ERROR, message="")
    to_withdraw, untouched = _order(ctx, paper, WITHDRAW_ORDER, ["Carnet A5", "Stylo plume"])
    _act(ctx, to_withdraw, Action.ACCEPT)
    _act(ctx, untouched, Action.ACCEPT)

    handler, _ = module_relay
    handler.script = ["550 5.1.1 mailbox unavailable"]
    _deliver(live_system)
    inbox = InboxHandler(live_system.db, live_system.clock)
    for received in handler.received[:6]:
        inbox.store(received.mail_from, received.rcpt_tos, received.raw)
    [dead] = console_service.list_outbox(ctx, "dead").rows
    return Console(shop, paper, to_withdraw, untouched, dead.id)


@dataclass
class Tab:
    """A page in its own browser context, and what went wrong in it."""

    page: Page
    server: str
    problems: list[str]
    expected: set[tuple[int, str]] = field(default_factory=set)

    def go(self, path: str) -> None:
        self.page.goto(self.server + path)

    def expect_status(self, status: int, path: str) -> None:
        """The next answer from ``path`` is meant to be ``status`` (a page saying why), which
        Chromium logs as a failed resource: not a problem here."""
        self.expected.add((status, path))


FAILED = re.compile(r"^Failed to load resource: the server responded with a status of (\d+)")


def _console_message(tab: Tab, message: Any) -> None:
    if message.type != "error":
        return
    url = message.location.get("url", "")
    failed = FAILED.match(message.text)
    # Chromium asks for /favicon.ico on its own; mailflow has none (a 404 that means nothing).
    if failed and (
        url.endswith("/favicon.ico")
        or ((int(failed.group(1)), url.removeprefix(tab.server)) in tab.expected)
    ):
        return
    tab.problems.append(f"console: {message.text} ({url})")


@pytest.fixture
def open_tab(browser: Browser, server: str, console: Console) -> Iterator[Any]:
    """Opens tabs, each in a fresh context; after the test none may have logged a console
    error, thrown a script error, or asked another host for anything."""
    opened: list[Tab] = []

    def factory(**options: Any) -> Tab:
        context = browser.new_context(**context_options(locale="en-GB", **options))
        page = context.new_page()
        page.set_default_timeout(10_000)
        tab = Tab(page, server, [])
        page.on("console", lambda m: _console_message(tab, m))
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


def sign_in(tab: Tab, email: str, password: str = PASSWORD) -> None:
    """From the keyboard: the email field has the focus, Tab to the password, Enter."""
    tab.go("/admin/login")
    page = tab.page
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")


@pytest.fixture(scope="module")
def sessions(browser: Browser, server: str, console: Console) -> dict[str, Any]:
    """Each console user's browser state after signing in once, from the keyboard."""
    states = {}
    for email in (ADMIN, SUPPORT):
        context = browser.new_context(**context_options(locale="en-GB"))
        tab = Tab(context.new_page(), server, [])
        sign_in(tab, email)
        expect(tab.page.get_by_text(f"Signed in as {email}")).to_be_visible()
        states[email] = context.storage_state()
        context.close()
        assert tab.problems == []
    return states


def signed_in(open_tab: Any, sessions: dict[str, Any], email: str, **options: Any) -> Tab:
    """A tab of ``email``'s, already signed in (its first page: the sales)."""
    tab: Tab = open_tab(storage_state=sessions[email], **options)
    tab.go("/admin/sales")
    return tab


def shot(page: Page, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"admin-{name}.png"), full_page=True)


def no_sideways_scroll(page: Page) -> None:
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert page.evaluate("document.documentElement.scrollWidth") <= width, page.url


# -- signing in and CSRF --------------------------------------------------------------------


class TestNothingWithoutTheRightCredentials:
    def test_a_wrong_password_gets_nothing(self, open_tab: Any, screenshots: Path) -> None:
        tab = open_tab()
        page = tab.page
        tab.go("/admin/sales")
        expect(page).to_have_url(re.compile(r"/admin/login\?next=%2Fadmin%2Fsales$"))
        shot(page, screenshots, "login")
        page.get_by_label("Email").fill(ADMIN)
        page.get_by_label("Password").fill(PASSWORD + "?")
        tab.expect_status(401, "/admin/login")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
        expect(page.get_by_role("link", name="Sales")).to_have_count(0)
        tab.go("/admin/outbox")
        expect(page).to_have_url(re.compile(r"/admin/login"))

    def test_a_form_without_its_csrf_token_changes_nothing(
        self, open_tab: Any, sessions: dict[str, Any], console: Console, live_system: System
    ) -> None:
        tab = signed_in(open_tab, sessions, SUPPORT)
        page = tab.page
        tab.go(f"/admin/sales/{console.untouched}")
        page.locator('form[action$="/withdraw"] input[name="csrf_token"]').evaluate(
            "input => input.remove()"
        )
        page.get_by_label("Note").fill("no token")
        page.once("dialog", lambda dialog: dialog.accept())
        tab.expect_status(403, f"/admin/sales/{console.untouched}/withdraw")
        page.get_by_role("button", name="Record the buyer's withdrawal").click()
        expect(page.get_by_role("heading", name="Action refused")).to_be_visible()
        view = sales.get_sale(live_system.services, console.untouched)
        assert view["status"] == "accepted"
        assert [e["action"] for e in view["events"]] == ["create", "accept"]


# -- templates ------------------------------------------------------------------------------


class TestAnAdminEditsATemplate:
    def test_preview_a_problem_at_its_line_publish_and_the_next_email_uses_it(
        self,
        open_tab: Any,
        sessions: dict[str, Any],
        console: Console,
        live_system: System,
        module_relay: tuple[RelayHandler, int],
        screenshots: Path,
    ) -> None:
        tab = signed_in(open_tab, sessions, ADMIN)
        page = tab.page
        page.get_by_role("link", name="Templates").click()
        expect(page.get_by_role("heading", name="Email templates")).to_be_visible()
        shot(page, screenshots, "templates")
        page.get_by_role("link", name="Edit seller_new_sale in fr").click()
        expect(page).to_have_url(f"{tab.server}{EDIT}")
        frame = page.frame_locator("#preview-html")
        expect(frame.locator("body")).to_contain_text("Bonjour Librairie Dupont")

        # The preview follows the edit: subject, text and the HTML in its frame.
        subject = page.get_by_label("Subject", exact=True)
        subject.fill(MARK + " Vente {{ sale.id }} : {{ sale.title }}")
        expect(page.locator("#preview-subject")).to_have_text(
            f"{MARK} Vente 12 : Le Petit Prince (édition 1999)"
        )
        html = page.get_by_label("HTML part", exact=True)
        html.fill(html.input_value().replace("Bonjour", f"{MARK} Bonjour", 1))
        expect(frame.locator("body")).to_contain_text(f"{MARK} Bonjour Librairie Dupont")

        # A mistake on line 3 of the text part is shown there, and "Line 3" goes to it.
        text = page.get_by_label("Text part", exact=True)
        good_text = text.input_value()
        lines = good_text.split("\n")
        lines[2] = "Montant : {{ sale.price }}"
        text.fill("\n".join(lines))
        problems = page.locator("#problems-text")
        expect(problems).to_contain_text("sale has no 'price'")
        expect(problems.get_by_role("button", name="Line 3")).to_be_visible()
        expect(text).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#problems-summary")).to_contain_text("Text part, line 3")
        expect(page.locator("#preview-state")).to_have_text("Not updated: fix the problems first.")
        shot(page, screenshots, "template-problem")
        problems.get_by_role("button", name="Line 3").click()
        focused, selected = page.evaluate(
            "() => { const a = document.getElementById('part-text');"
            " return [document.activeElement === a,"
            " a.value.slice(a.selectionStart, a.selectionEnd)]; }"
        )
        assert (focused, selected) == (True, "Montant : {{ sale.price }}")
        text.fill(good_text)
        expect(problems.locator("li")).to_have_count(0)
        expect(page.locator("#problems-summary")).to_be_hidden()
        expect(page.locator("#preview-state")).to_have_text("Preview up to date.")
        expect(frame.locator("body")).to_contain_text(f"{MARK} Bonjour")
        shot(page, screenshots, "template-edit")

        # Save, publish: the next seller_new_sale in French uses the new version.
        page.get_by_role("button", name="Save draft").click()
        expect(page.get_by_text("Draft version 1 saved.")).to_be_visible()
        page.locator("#publish-shown").click()
        expect(page.get_by_text("Version 1 published: the next seller_new_sale")).to_be_visible()
        [sale_id] = _order(live_system.services, console.paper_id, "MKT-2026-7100", ["Nana"])
        _deliver(live_system)
        handler, _ = module_relay
        [message] = [
            m
            for m in handler.messages()
            if m["X-Mailflow-Template"] == "seller_new_sale" and m["Subject"].startswith(MARK)
        ]
        assert message["Subject"] == f"{MARK} Vente {sale_id} : Nana"
        assert f"{MARK} Bonjour Papeterie Fourvière" in html_of(message)

        # A test send, the diff with the shipped default, and back to the default.
        page.get_by_label("To", exact=True).fill("qa@marketplace.example")
        page.get_by_role("button", name="Send a test").click()
        expect(page.get_by_text("Test email queued to qa@marketplace.example")).to_be_visible()
        page.get_by_role("link", name="Diff of version 1 with the default").click()
        expect(
            page.get_by_role("heading", name="Version 1 and the shipped default")
        ).to_be_visible()
        expect(page.locator("pre.diff .add").first).to_contain_text(MARK)
        shot(page, screenshots, "template-diff")
        page.get_by_role("link", name="seller_new_sale · fr").click()
        page.get_by_role("button", name="Roll back to it version 0").click()
        expect(page.get_by_text("Rolled back to version 0 (the shipped default)")).to_be_visible()

    def test_the_preview_is_there_when_the_editor_opens(
        self, open_tab: Any, sessions: dict[str, Any], console: Console
    ) -> None:
        tab = signed_in(open_tab, sessions, ADMIN)
        page = tab.page
        tab.go(REFUSED_EN)
        # Nothing typed: subject, text and HTML are shown as sent, with the sample data.
        frame = page.frame_locator("#preview-html")
        expect(frame.locator("body")).to_contain_text("cannot sell you")
        expect(frame.locator("body")).to_contain_text("Hello Éloïse Müller")
        expect(page.locator("#preview-text")).to_contain_text("Hello Éloïse Müller")
        expect(page.locator("#preview-subject")).to_contain_text("article unavailable")

    def test_text_the_browser_puts_back_is_previewed_without_a_keystroke(
        self, open_tab: Any, sessions: dict[str, Any], console: Console
    ) -> None:
        tab = signed_in(open_tab, sessions, ADMIN)
        page = tab.page
        tab.go(REFUSED_EN)
        expect(page.locator("#preview-subject")).to_contain_text("article unavailable")
        # Text typed, then the page left before any preview, then back: Chromium puts the
        # typed text back into the area, and the preview must show it, not the saved version.
        page.get_by_label("Subject", exact=True).evaluate(
            "area => { area.value = 'Restored {{ order.external_id }}'; }"
        )
        tab.go("/admin/templates")
        page.go_back()
        expect(page.get_by_label("Subject", exact=True)).to_have_value(
            "Restored {{ order.external_id }}"
        )
        expect(page.locator("#preview-subject")).to_have_text(re.compile(r"^Restored \S+$"))
        expect(page.locator("#preview-state")).to_have_text("Preview up to date.")
        frame = page.frame_locator("#preview-html")
        expect(frame.locator("body")).to_contain_text("cannot sell you")


# -- customer service -----------------------------------------------------------------------


class TestSupport:
    def test_support_records_a_withdrawal(
        self,
        open_tab: Any,
        sessions: dict[str, Any],
        console: Console,
        live_system: System,
        module_relay: tuple[RelayHandler, int],
        screenshots: Path,
    ) -> None:
        tab = signed_in(open_tab, sessions, SUPPORT)
        page = tab.page
        expect(page.get_by_role("link", name="Templates")).to_have_count(0)
        tab.expect_status(403, "/admin/templates")
        tab.go("/admin/templates")
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()

        page.get_by_role("link", name="Sales").click()
        page.get_by_label("Sale no., order number, article or seller").fill(WITHDRAW_ORDER)
        page.keyboard.press("Enter")
        row = page.get_by_role("row").filter(has_text="Carnet A5")
        expect(row).to_have_count(1)
        shot(page, screenshots, "sales")
        row.get_by_role("link", name=f"#{console.to_withdraw}").click()
        expect(page.get_by_role("heading", name=f"Sale #{console.to_withdraw}")).to_be_visible()
        shot(page, screenshots, "sale")

        page.get_by_label("Note").fill("Le client a appelé : il ne veut plus du carnet.")
        asked: list[str] = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
        page.get_by_role("button", name="Record the buyer's withdrawal").click()
        expect(page.get_by_text("The buyer's withdrawal is recorded")).to_be_visible()
        assert asked and "cannot be undone" in asked[0]
        expect(page.locator("h1 .status")).to_have_text("withdrawn")
        history = page.get_by_role("row").filter(has_text="accepted → withdrawn")
        expect(history).to_contain_text("support (portal)")
        expect(history).to_contain_text("Le client a appelé")

        view = sales.get_sale(live_system.services, console.to_withdraw)
        assert view["status"] == "withdrawn" and view["payment"]["commission"] == "0.00"
        _deliver(live_system)
        handler, _ = module_relay
        assert any(
            m["X-Mailflow-Template"] == "buyer_withdrawal_confirmed"
            and m["To"].addresses[0].addr_spec == f"{WITHDRAW_ORDER.lower()}@mail.example"
            for m in handler.messages()
        )

    def test_sellers_with_their_rate_and_the_sales_that_count(
        self, open_tab: Any, sessions: dict[str, Any], console: Console, screenshots: Path
    ) -> None:
        tab = signed_in(open_tab, sessions, SUPPORT)
        page = tab.page
        page.get_by_role("link", name="Sellers").click()
        rows = page.get_by_role("row")
        expect(rows.nth(1)).to_contain_text("Bellecour Records")  # the highest rate first
        expect(rows.nth(1)).to_contain_text("9.5%")
        expect(rows.filter(has_text="Librairie des Canuts")).to_contain_text("4.3%")
        shot(page, screenshots, "sellers")
        page.get_by_role("link", name="Librairie des Canuts").click()
        expect(page.get_by_role("heading", name="The sales that count")).to_be_visible()
        counting = page.locator("section", has_text="The sales that count").get_by_role("row")
        expect(counting).to_have_count(2)  # the header and the one cancellation
        expect(counting.nth(1)).to_contain_text("cancelled")
        shot(page, screenshots, "seller")

    def test_the_console_in_french_then_back_in_english(
        self, open_tab: Any, sessions: dict[str, Any], console: Console, screenshots: Path
    ) -> None:
        tab = signed_in(open_tab, sessions, SUPPORT)
        page = tab.page
        page.get_by_label("Language").select_option("fr")
        page.get_by_role("button", name="Change").click()
        page.get_by_role("link", name="Vendeurs").click()
        expect(page.get_by_role("heading", name="Vendeurs")).to_be_visible()
        expect(page.get_by_role("row").nth(1)).to_contain_text("9,5\u00a0%")
        expect(page.get_by_text("Heures de Europe/Paris.")).to_be_visible()
        shot(page, screenshots, "sellers-fr")
        page.get_by_label("Langue").select_option("en")
        page.get_by_role("button", name="Changer").click()
        expect(page.get_by_role("heading", name="Sellers")).to_be_visible()
        expect(page.get_by_text("Times in Europe/Paris.")).to_be_visible()


# -- mail -----------------------------------------------------------------------------------


class TestMail:
    def test_a_dead_message_is_retried_and_delivered(
        self,
        open_tab: Any,
        sessions: dict[str, Any],
        console: Console,
        live_system: System,
        module_relay: tuple[RelayHandler, int],
        screenshots: Path,
    ) -> None:
        tab = signed_in(open_tab, sessions, SUPPORT)
        page = tab.page
        page.get_by_role("link", name="Outbox").click()
        page.get_by_role("link", name=re.compile(r"^dead \(1\)$")).click()
        row = page.locator(f"#message-{console.dead_message}")
        expect(row).to_contain_text("550 5.1.1 mailbox unavailable")
        shot(page, screenshots, "outbox")
        row.get_by_role("button", name=f"Retry message {console.dead_message}").click()
        expect(page.get_by_text(f"Message #{console.dead_message} is queued again")).to_be_visible()
        _deliver(live_system)
        tab.go(f"/admin/outbox/{console.dead_message}")
        expect(page.locator("h1 .status")).to_have_text("sent")
        handler, _ = module_relay
        ids = [m["Message-ID"] for m in handler.messages()]
        message_id = page.locator("dt:text-is('Message-ID') + dd").inner_text()
        assert ids.count(message_id) == 1

    def test_the_inbox_shows_a_message_four_ways(
        self, open_tab: Any, sessions: dict[str, Any], console: Console, screenshots: Path
    ) -> None:
        tab = signed_in(open_tab, sessions, SUPPORT)
        page = tab.page
        page.get_by_role("link", name="Inbox").click()
        expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
        shot(page, screenshots, "inbox")
        page.get_by_role("row").filter(has_text="Nouvelle vente").first.get_by_role(
            "link"
        ).last.click()
        frame = page.frame_locator("iframe.message-frame")
        expect(frame.get_by_role("link", name="Accepter la vente")).to_be_visible()
        shot(page, screenshots, "inbox-message")
        page.get_by_role("link", name="Text", exact=True).click()
        expect(page.locator("pre.preview")).to_contain_text("Accepter la vente")
        page.get_by_role("link", name="Raw", exact=True).click()
        expect(page.locator("pre.preview")).to_contain_text("X-Mailflow-Template: seller_new_sale")
        page.get_by_role("link", name="Links (3)").click()
        links = page.locator("td.url a")
        expect(links).to_have_count(3)
        for href in links.evaluate_all("links => links.map(a => a.href)"):
            assert re.match(r"http://mailflow\.test/s/[\w.-]+$", href)


class TestAccessibility:
    @pytest.mark.parametrize("width", [1280, 375])
    def test_axe_finds_nothing_serious_on_the_console_pages(
        self, open_tab: Any, sessions: dict[str, Any], console: Console, width: int
    ) -> None:
        # axe-core comes in as a script tag, which the CSP refuses: these tabs bypass it (the
        # other tests check the CSP).
        tab = signed_in(
            open_tab, sessions, ADMIN, bypass_csp=True, viewport={"width": width, "height": 900}
        )
        page = tab.page
        found: list[str] = []
        for path in (
            "/admin/templates",
            EDIT,
            "/admin/sales",
            f"/admin/sales/{console.to_withdraw}",
            "/admin/sellers",
            f"/admin/sellers/{console.shop_id}",
            "/admin/outbox",
            f"/admin/outbox/{console.dead_message}",
            f"/admin/outbox/{console.dead_message}?view=text",
            f"/admin/outbox/{console.dead_message}?view=raw",
            "/admin/inbox",
            "/admin/inbox/1?view=raw",
            "/admin/inbox/1?view=links",
            "/admin/nothing-here",  # the page of an address that is none
            "/admin/bounces",
            "/admin/suppressions",
            "/admin/webhooks",
        ):
            if path == "/admin/nothing-here":
                tab.expect_status(404, path)
            tab.go(path)
            if path == EDIT:
                expect(page.locator("#preview-text")).to_contain_text("Bonjour")
            found += axe_violations(page)
        signed_out = open_tab(bypass_csp=True, viewport={"width": width, "height": 900})
        signed_out.go("/admin/login")
        found += axe_violations(signed_out.page)
        assert found == []


class TestOnAPhone:
    def test_no_page_scrolls_sideways(
        self, open_tab: Any, sessions: dict[str, Any], console: Console, screenshots: Path
    ) -> None:
        tab = signed_in(
            open_tab,
            sessions,
            ADMIN,
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            device_scale_factor=1,
        )
        page = tab.page
        for path in (
            "/admin/templates",
            EDIT,
            "/admin/sellers",
            f"/admin/sellers/{console.shop_id}",
            "/admin/sales",
            f"/admin/sales/{console.to_withdraw}",
            "/admin/outbox",
            f"/admin/outbox/{console.dead_message}?view=raw",
            "/admin/inbox",
            "/admin/bounces",
            "/admin/suppressions",
            "/admin/webhooks",
        ):
            tab.go(path)
            no_sideways_scroll(page)
        tab.go(f"/admin/sales/{console.to_withdraw}")
        shot(page, screenshots, "sale-phone")

    def test_table_cells_show_their_column_labels(
        self, open_tab: Any, sessions: dict[str, Any], console: Console, screenshots: Path
    ) -> None:
        tab = signed_in(
            open_tab,
            sessions,
            SUPPORT,
            viewport={"width": 375, "height": 812},
            is_mobile=True,
            has_touch=True,
            device_scale_factor=1,
        )
        page = tab.page
        labels = (
            "row => Array.from(row.querySelectorAll('td'),"
            " td => getComputedStyle(td, '::before').content)"
        )
        for language, change, menu, expected in (
            ("fr", "Change", "Vendeurs", ['"Vendeur"', '"Taux"', '"Niveau"', '"Comptées"']),
            ("en", "Changer", "Sellers", ['"Seller"', '"Rate"', '"Tier"', '"Counted"']),
        ):
            page.locator("#console-language").select_option(language)
            page.get_by_role("button", name=change).click()
            page.get_by_role("link", name=menu).click()
            expect(page.locator("table.list thead")).to_be_hidden()  # the phone layout
            row = page.get_by_role("row").filter(has_text="Bellecour Records")
            expect(row).to_be_visible()
            shown = row.evaluate(labels)
            headers = page.locator("table.list th").all_text_contents()
            # Every cell is labelled with its column's header, in the console's language.
            assert shown == [f'"{header}"' for header in headers], shown
            assert shown[:4] == expected
            if language == "fr":
                shot(page, screenshots, "sellers-phone-fr")
        tab.go("/admin/sales")
        row = page.get_by_role("row").filter(has_text="Carnet A5")
        assert row.evaluate(labels)[:3] == ['"Sale"', '"Order"', '"Article"']
