"""``mailflow inbox [list]`` and ``mailflow inbox serve``: the embedded inbox."""

from __future__ import annotations

import argparse
import asyncio

from mailflow.cli._common import CliError, Subparsers, command, load_settings, open_system
from mailflow.services import console


def add_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    inbox = command(sub, "inbox", _inbox, parents=[common], help="list the embedded inbox")
    inbox.add_argument("--limit", type=int, default=50, help="how many messages (default 50)")
    inbox_sub = inbox.add_subparsers(dest="inbox_command", metavar="COMMAND")
    listing = inbox_sub.add_parser("list", parents=[common], help="list messages (the default)")
    listing.add_argument("--limit", type=int, default=50, help="how many messages (default 50)")
    inbox_sub.add_parser("serve", parents=[common], help="run the embedded inbox on its own")


def _inbox(args: argparse.Namespace) -> int:
    system = open_system(load_settings(args))
    try:
        if args.inbox_command == "serve":
            from mailflow import runner

            asyncio.run(runner.inbox_only(system))
            return 0
        if args.limit < 1:
            raise CliError("--limit must be 1 or more")
        rows = console.list_inbox(system.services, size=args.limit).rows
    finally:
        system.close()
    if not rows:
        print("the inbox is empty")
    for row in rows:
        when = row.received_at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{row.id:>6}  {when}  {row.rcpt_to:<40.40}  {row.subject}")
    return 0
