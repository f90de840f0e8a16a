"""``mailflow inbox [list]``, ``mailflow inbox show N`` and ``mailflow inbox serve``: the
embedded inbox."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict

from mailflow.cli._common import (
    CliError,
    Refused,
    Subparsers,
    add_json_option,
    command,
    load_settings,
    open_data,
    open_system,
    print_json,
)
from mailflow.mail.reading import message_view
from mailflow.services import console
from mailflow.services.context import ServiceContext
from mailflow.services.errors import NotFound


def _list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=50, help="how many messages (default 50)")
    parser.add_argument("--search", default="", metavar="WORDS", help="in recipient or subject")
    add_json_option(parser)


def add_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    inbox = command(sub, "inbox", _inbox, parents=[common], help="the embedded inbox")
    _list_options(inbox)
    inbox_sub = inbox.add_subparsers(dest="inbox_command", metavar="COMMAND")
    _list_options(inbox_sub.add_parser("list", parents=[common], help="messages (the default)"))
    show = inbox_sub.add_parser("show", parents=[common], help="a message's text and links")
    show.add_argument("message_id", type=int, metavar="N")
    add_json_option(show)
    serve = inbox_sub.add_parser("serve", parents=[common], help="run the embedded inbox alone")
    serve.add_argument(
        "--port", type=int, help="port to listen on, 127.0.0.1 only (default smtp.embedded_port)"
    )


def _inbox(args: argparse.Namespace) -> int:
    if args.inbox_command == "serve":
        return _serve(args)
    system = open_data(args)
    try:
        if args.inbox_command == "show":
            return _show(system.services, args)
        if args.limit < 1:
            raise CliError("--limit must be 1 or more")
        rows = console.list_inbox(system.services, search=args.search, size=args.limit).rows
    finally:
        system.close()
    if args.json:
        print_json([asdict(row) for row in rows])
        return 0
    if not rows:
        print("no message matches" if args.search else "the inbox is empty")
    for row in rows:
        when = row.received_at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{row.id:>6}  {when}  {row.rcpt_to:<40.40}  {row.subject}")
    return 0


def _show(ctx: ServiceContext, args: argparse.Namespace) -> int:
    try:
        row = console.inbox_message(ctx, args.message_id)
    except NotFound as exc:
        raise Refused(f"{exc.message} (`mailflow inbox` lists them)") from exc
    view = message_view(row.raw)
    if args.json:
        print_json(
            {
                "id": row.id,
                "received_at": row.received_at,
                "from": row.mail_from,
                "to": row.rcpt_to,
                "subject": row.subject,
                "headers": dict(view["headers"]),
                "text": view["text"],
                "links": view["links"],
            }
        )
        return 0
    for name, value in view["headers"]:
        print(f"{name}: {value}")
    print()
    print(view["text"].rstrip() or "(no text part)")
    print()
    print(f"links ({len(view['links'])}):")
    for link in view["links"]:
        words = f"  [{link['words']}]" if link["words"] else ""
        print(f"  {link['url']}{words}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from mailflow import listen, runner

    loaded = load_settings(args)
    port = loaded.settings.smtp.embedded_port if args.port is None else args.port
    if not 1 <= port <= 65535:
        raise CliError(f"--port {port}: must be between 1 and 65535")
    try:
        sock = listen.bind("127.0.0.1", port, "smtp.embedded_port (or --port)")
    except listen.CannotListen as exc:
        raise CliError(str(exc)) from exc
    system = open_system(loaded)
    try:
        asyncio.run(runner.inbox_only(system, sock))
    finally:
        system.close()
    return 0
