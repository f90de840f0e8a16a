"""The ``mailflow`` command: one module per command group, each adding its own parsers.

The groups import only ``cli._common``, the services and the bootstrap; this module puts them
together in the order ``mailflow --help`` lists them and turns their errors into exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from mailflow import __version__
from mailflow.cli import admin, db, inbound, inbox, sales, sellers, serve, templates
from mailflow.cli._common import CliError
from mailflow.mail.templates import TemplateError

GROUPS = (serve, db, inbox, inbound, sellers, sales, templates, admin)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", help="settings file (default ./mailflow.toml if present)"
    )
    parser = argparse.ArgumentParser(
        prog="mailflow", description="Order refusals and cancellations, run by email."
    )
    parser.add_argument("--version", action="version", version=f"mailflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_parsers(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("alembic", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        status: int = args.handler(args)
        return status
    except CliError as exc:
        print(f"mailflow: {exc}", file=sys.stderr)
        return 2
    except TemplateError as exc:
        print(f"mailflow: template error, nothing was changed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into e.g. `head`, which stopped reading: not an error.
        sys.stderr.close()
        return 0
