"""Fixtures for the browser tests: one headless Chromium per module, a live uvicorn on SQLite.

The browser is the system's Chromium (``/usr/bin/chromium``; ``.ci/run`` installs it) driven
by Playwright for Python. Without it the tests skip on a workstation and fail under CI
(``CI=true``), so a CI image that lost its browser cannot pass silently.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from mailflow.bootstrap import System, build
from tests.conftest import make_settings
from tests.support import MovableClock, RelayHandler, live_server, smtp_relay

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests need Chromium under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module (each test opens its own context)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - depends on the machine
        _unavailable(f"Playwright for Python is not installed: {exc}")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # pragma: no cover - depends on the machine
            _unavailable(f"Chromium at {CHROMIUM} does not start: {exc}")
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def module_relay() -> Iterator[tuple[RelayHandler, int]]:
    with smtp_relay() as (handler, port):
        yield handler, port


@pytest.fixture(scope="module")
def live_system(
    migrated_sqlite: Path,
    tmp_path_factory: pytest.TempPathFactory,
    module_relay: tuple[RelayHandler, int],
) -> Iterator[System]:
    """A system on its own SQLite file, for the whole module, on a clock that stands still."""
    path = tmp_path_factory.mktemp("browser") / "mailflow.db"
    shutil.copyfile(migrated_sqlite, path)
    system = build(make_settings(f"sqlite:///{path}", module_relay[1]), clock=MovableClock())
    try:
        yield system
    finally:
        system.close()


@pytest.fixture(scope="module")
def server(live_system: System) -> Iterator[str]:
    """The app on a real uvicorn; its base URL."""
    with live_server(live_system) as url:
        yield url


@pytest.fixture(scope="module")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def context_options(**overrides: Any) -> dict[str, Any]:
    """A desktop browser in French, 1280 pixels wide, unless overridden."""
    return {"viewport": {"width": 1280, "height": 900}, "locale": "fr-FR", **overrides}
