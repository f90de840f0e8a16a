"""``mailflow db upgrade``: apply the migrations."""

from __future__ import annotations

import argparse

from mailflow.bootstrap import DatabaseUnreachable, build, upgrade_schema
from mailflow.cli._common import CliError, Subparsers, command, load_settings


def add_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    db = command(sub, "db", _db, help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    db_sub.add_parser("upgrade", parents=[common], help="apply migrations")


def _db(args: argparse.Namespace) -> int:
    system = build(load_settings(args).settings)
    try:
        revision = upgrade_schema(system)
    except DatabaseUnreachable as exc:
        raise CliError(str(exc)) from exc
    finally:
        system.close()
    print(f"database at revision {revision}")
    return 0
