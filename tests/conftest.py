"""Fixtures: databases (SQLite file and PostgreSQL), an SMTP relay, a system, an API client.

Tests marked ``postgres`` run against both SQLite and PostgreSQL. PostgreSQL is at
``MAILFLOW_TEST_PG_URL`` (default: the local cluster, role mailflow); each test run creates its
own database and drops it at the end. Under CI (``CI=true``) an unreachable PostgreSQL fails
the run instead of skipping.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from mailflow.bootstrap import System, build
from mailflow.config import Settings
from mailflow.store import migrate
from mailflow.store.database import Database
from tests.support import MovableClock, RelayHandler, smtp_relay

PG_ADMIN_URL = os.environ.get(
    "MAILFLOW_TEST_PG_URL", "postgresql+psycopg://mailflow:mailflow@127.0.0.1/postgres"
)
API_TOKEN = "test-token-" + "x" * 24
SECRET = "test-secret-" + "k" * 40


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
    with smtp_relay() as (handler, port):
        yield handler, port


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
