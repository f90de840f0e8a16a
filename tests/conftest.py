"""The shared fixtures: databases (SQLite file and PostgreSQL), the SMTP relay, a system, an
API client, and for the browser tests a headless Chromium, a live uvicorn and the screenshots'
folder.

Tests marked ``postgres`` run against both SQLite and PostgreSQL. PostgreSQL is at
``MAILFLOW_TEST_PG_URL`` (default: the local cluster, role mailflow); each test run creates its
own database and drops it at the end. Under CI (``CI=true``) an unreachable PostgreSQL fails
the run instead of skipping.

The browser is the system's Chromium (``/usr/bin/chromium``; ``.ci/run`` installs it) driven
by Playwright for Python. Without it the browser tests skip on a workstation and fail under CI,
so a CI image that lost its browser cannot pass silently.

Screenshots go to a temporary folder, so a test run never changes the repository;
``python -m pytest tests/browser --screenshots docs/screenshots`` refreshes the pictures the
docs show.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from mailflow.bootstrap import System, build
from mailflow.config import Settings
from mailflow.store import migrate
from mailflow.store.database import Database
from tests.support import MovableClock, RelayHandler, live_server, smtp_relay

if TYPE_CHECKING:
    from playwright.sync_api import Browser

PG_ADMIN_URL = os.environ.get(
    "MAILFLOW_TEST_PG_URL", "postgresql+psycopg://mailflow:mailflow@127.0.0.1/postgres"
)
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
API_TOKEN = "test-token-" + "x" * 24
SECRET = "test-secret-" + "k" * 40


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots",
        metavar="DIR",
        default=None,
        help="write the browser tests' screenshots here (docs/screenshots to refresh the "
        "docs' pictures); by default a temporary folder",
    )


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"mailflow_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per run; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "mailflow.db"
    db = Database.from_url(f"sqlite:///{path}")
    migrate.upgrade(db.engine)
    db.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


@pytest.fixture
def sqlite_url(migrated_sqlite: Path, tmp_path: Path) -> str:
    path = tmp_path / "mailflow.db"
    shutil.copyfile(migrated_sqlite, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")  # type: ignore[no-any-return]
    url = request.getfixturevalue("pg_url")
    _truncate_pg(url)
    return url


@pytest.fixture
def relay() -> Iterator[tuple[RelayHandler, int]]:
    with smtp_relay(RelayHandler()) as running:
        yield running


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


def make_settings(db_url: str, relay_port: int, **sections: dict[str, Any]) -> Settings:
    data: dict[str, Any] = {
        "server": {"base_url": "http://mailflow.test"},
        "database": {"url": db_url},
        "smtp": {
            "mode": "relay",
            "host": "127.0.0.1",
            "port": relay_port,
            "retry_base_seconds": 30,
            "support_address": "support@marketplace.example",
        },
        "security": {"secret_keys": [SECRET]},
        "api": {"tokens": [API_TOKEN]},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return Settings.model_validate(data)


@pytest.fixture
def pg_only_url(pg_url: str) -> str:
    """A migrated, empty PostgreSQL database, for what only PostgreSQL has (LISTEN/NOTIFY)."""
    _truncate_pg(pg_url)
    return pg_url


@pytest.fixture
def make_system(
    relay: tuple[RelayHandler, int], clock: MovableClock
) -> Iterator[Callable[..., System]]:
    built: list[System] = []

    def factory(url: str, **sections: dict[str, Any]) -> System:
        system = build(make_settings(url, relay[1], **sections), clock=clock)
        built.append(system)
        return system

    yield factory
    for system in built:
        system.close()


@pytest.fixture
def system(db_url: str, make_system: Callable[..., System]) -> System:
    return make_system(db_url)


@pytest.fixture
def api(system: System) -> Iterator[TestClient]:
    from mailflow.web.app import create_app

    with TestClient(create_app(system), base_url="http://mailflow.test") as client:
        client.headers["Authorization"] = f"Bearer {API_TOKEN}"
        yield client


@pytest.fixture
def web(system: System) -> Iterator[TestClient]:
    """The app without credentials, as a seller's browser or a mail scanner sees it."""
    from mailflow.web.app import create_app

    with TestClient(create_app(system), base_url="http://mailflow.test") as client:
        yield client


# --- browser tests ---------------------------------------------------------------------------


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
    with smtp_relay(RelayHandler()) as running:
        yield running


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


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests save their screenshots (``--screenshots``, else a temporary
    folder of this run)."""
    chosen = request.config.getoption("screenshots")
    if chosen is None:
        return tmp_path_factory.mktemp("screenshots")
    folder = Path(chosen).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder
