"""What every command group shares: the one-line error, the settings, the system."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any, Protocol

from mailflow.bootstrap import DatabaseUnreachable, SchemaBehind, System, build, ensure_schema
from mailflow.config import DEFAULT_CONFIG_FILE, ConfigError, Loaded, load, missing_database

Handler = Callable[[argparse.Namespace], int]


class Subparsers(Protocol):
    """What ``ArgumentParser.add_subparsers`` returns (argparse does not export its type)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


class CliError(Exception):
    """A usage or configuration problem to report in one line, with exit status 2."""

    status = 2


class Refused(CliError):
    """The operation was refused (an illegal transition, an unknown sale, an invalid
    template, no data here): one line, exit status 1."""

    status = 1


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json``: every command that lists or shows prints its data as JSON with it."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def add_listen_options(parser: argparse.ArgumentParser, section: str) -> None:
    """``--host``/``--port``, over ``[section] host`` and ``port`` (any command that listens)."""
    parser.add_argument("--host", help=f"address to listen on (default: {section}.host)")
    parser.add_argument(
        "--port", type=int, help=f"port to listen on, 0 for any free one (default: {section}.port)"
    )


def check_port(port: int | None) -> int | None:
    if port is not None and not 0 <= port <= 65535:
        raise CliError(f"--port {port}: must be between 0 and 65535")
    return port


def command(sub: Subparsers, name: str, handler: Handler, **kwargs: Any) -> argparse.ArgumentParser:
    """A top-level command whose parsed arguments ``main`` hands to ``handler``."""
    parser = sub.add_parser(name, **kwargs)
    parser.set_defaults(handler=handler)
    return parser


def load_settings(args: argparse.Namespace) -> Loaded:
    try:
        return load(getattr(args, "config", None))
    except ConfigError as exc:
        raise CliError(f"configuration: {exc}") from exc


def open_data(args: argparse.Namespace) -> System:
    """The system of a command that reads data: in a folder with no configuration and no
    database it says so (exit 1) and creates nothing, neither a database nor secrets."""
    missing = missing_database(getattr(args, "config", None))
    if missing is not None:
        raise Refused(
            f"no database here ({missing}) and no {DEFAULT_CONFIG_FILE}: run this in the folder "
            "where `mailflow serve` runs, pass --config FILE, or start with `mailflow serve` "
            "(or `mailflow db upgrade`); nothing was created"
        )
    return open_system(load_settings(args))


def open_system(loaded: Loaded) -> System:
    """The system, its database schema checked (SQLite is brought up to date by itself)."""
    system = build(loaded.settings)
    try:
        ensure_schema(system)
    except SchemaBehind as exc:
        system.close()
        raise CliError(f"{exc}: run `mailflow db upgrade` first") from exc
    except DatabaseUnreachable as exc:
        system.close()
        raise CliError(str(exc)) from exc
    return system
