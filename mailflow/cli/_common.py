"""What every command group shares: the one-line error, the settings, the system."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Protocol

from mailflow.bootstrap import DatabaseUnreachable, SchemaBehind, System, build, ensure_schema
from mailflow.config import ConfigError, Loaded, load

Handler = Callable[[argparse.Namespace], int]


class Subparsers(Protocol):
    """What ``ArgumentParser.add_subparsers`` returns (argparse does not export its type)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


class CliError(Exception):
    """A problem to report in one line, with exit status 2."""


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
