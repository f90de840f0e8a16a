"""The ``mailflow`` command: one module per command group, each adding its own parsers.

The groups import only ``cli._common``, the services and the bootstrap; this module puts them
together in the order ``mailflow --help`` lists them and turns their errors into an exit status:
0 done, 1 the operation was refused (``Refused``), 2 a usage or configuration error
(``CliError``; argparse's own usage errors are 2 as well). ``mailflow`` alone prints the help.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mailflow import __version__, logs
from mailflow.cli import admin, db, dkim, inbound, inbox, sales, sellers, serve, templates
from mailflow.cli._common import CliError
from mailflow.config import ConfigError
from mailflow.mail.templates import TemplateError

GROUPS = (serve, db, inbox, inbound, sellers, sales, templates, admin, dkim)

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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.add_parsers(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    # Text at info until a command has read its settings (``serve`` and ``worker`` then apply
    # ``[server] log_format`` and ``log_level``).
    logs.configure()
    try:
        status: int = args.handler(args)
        return status
    except CliError as exc:
        print(f"mailflow: {exc}", file=sys.stderr)
        return exc.status
    except ConfigError as exc:
        # What only building the system finds out (a DKIM key that cannot sign).
        print(f"mailflow: configuration: {exc}", file=sys.stderr)
        return 2
    except TemplateError as exc:
        print(f"mailflow: template error, nothing was changed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into e.g. `head`, which stopped reading: not an error.
        sys.stderr.close()
        return 0
