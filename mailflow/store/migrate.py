"""Alembic migrations, run from code (``mailflow db upgrade``; ``serve`` on the SQLite default)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

MIGRATIONS = Path(__file__).with_name("migrations")


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(_config(engine), revision)


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


class DatabaseUnreachable(Exception):
    """The database refused or dropped the connection: ``database URL: reason``."""

    def __init__(self, url: str, reason: object) -> None:
        super().__init__(f"database {url}: {reason}")


class SchemaBehind(Exception):
    """A database whose schema is older than this code's migrations."""


def ensure_current(engine: Engine, url: str, *, bring_up_to_date: bool) -> None:
    """Bring the schema up to date, or (``bring_up_to_date=False``) raise ``SchemaBehind``
    if it is not. Raises ``DatabaseUnreachable`` when the database does not answer."""
    try:
        if bring_up_to_date:
            upgrade(engine)
        elif not is_current(engine):
            raise SchemaBehind("the database schema is not up to date")
    except OperationalError as exc:
        raise DatabaseUnreachable(url, exc.orig) from exc


def upgrade_to_head(engine: Engine, url: str) -> str | None:
    """Apply the migrations not yet applied; the revision the database is then at. Raises
    ``DatabaseUnreachable`` when the database does not answer."""
    try:
        upgrade(engine)
    except OperationalError as exc:
        raise DatabaseUnreachable(url, exc.orig) from exc
    return head_revision()
