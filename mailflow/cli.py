"""The ``mailflow`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
from collections.abc import Sequence

from sqlalchemy.exc import OperationalError

from mailflow import __version__, cli_admin, cli_templates, i18n
from mailflow.bootstrap import System, build
from mailflow.config import ConfigError, Loaded, load
from mailflow.mail.templates import TemplateError
from mailflow.services import console
from mailflow.store import migrate


class CliError(Exception):
    """A problem to report in one line, with exit status 2."""


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

    serve = sub.add_parser(
        "serve", parents=[common], help="HTTP, delivery worker and (embedded mode) the inbox"
    )
    serve.add_argument("--demo", action="store_true", help="seed sellers and orders to look at")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="HTTP processes (default 1); with more, run `mailflow inbox serve` for the inbox",
    )
    sub.add_parser("worker", parents=[common], help="delivery only (more processes)")

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    db_sub.add_parser("upgrade", parents=[common], help="apply migrations")

    inbox = sub.add_parser("inbox", parents=[common], help="list the embedded inbox")
    inbox.add_argument("--limit", type=int, default=50, help="how many messages (default 50)")
    inbox_sub = inbox.add_subparsers(dest="inbox_command", metavar="COMMAND")
    listing = inbox_sub.add_parser("list", parents=[common], help="list messages (the default)")
    listing.add_argument("--limit", type=int, default=50, help="how many messages (default 50)")
    inbox_sub.add_parser("serve", parents=[common], help="run the embedded inbox on its own")

    sellers_cmd = sub.add_parser("sellers", help="sellers and their cancellation rates")
    sellers_sub = sellers_cmd.add_subparsers(
        dest="sellers_command", required=True, metavar="COMMAND"
    )
    stats = sellers_sub.add_parser("stats", parents=[common], help="a table of rates and tiers")
    stats.add_argument("--over", action="store_true", help="only sellers at or over the threshold")

    sales_cmd = sub.add_parser("sales", help="look at a sale or change it, as customer service")
    sales_sub = sales_cmd.add_subparsers(dest="sales_command", required=True, metavar="COMMAND")
    show = sales_sub.add_parser("show", parents=[common], help="a sale, its payment and events")
    show.add_argument("sale_id", type=int, metavar="ID")
    for name, text in (
        ("accept", "accept a pending sale"),
        ("refuse", "refuse a pending sale"),
        ("ship", "mark an accepted sale shipped"),
        ("cancel", "cancel an accepted sale (the buyer is refunded)"),
        ("withdraw", "record the buyer's withdrawal (never counts in the rate)"),
    ):
        cmd = sales_sub.add_parser(name, parents=[common], help=text)
        cmd.add_argument("sale_id", type=int, metavar="ID")
        if name in ("refuse", "cancel"):
            cmd.add_argument("--reason", default="out_of_stock", help="reason code")
        if name == "cancel":
            cmd.add_argument("--message", default="", help="message to the buyer")
        if name == "withdraw":
            cmd.add_argument("--note", default="", help="customer service's note")
    cli_templates.add_parsers(sub, common)
    cli_admin.add_parsers(sub, common)
    return parser


def _load(args: argparse.Namespace) -> Loaded:
    try:
        return load(getattr(args, "config", None))
    except ConfigError as exc:
        raise CliError(f"configuration: {exc}") from exc


def _system(loaded: Loaded) -> System:
    """The system; a SQLite database is brought up to date by itself, PostgreSQL must be."""
    system = build(loaded.settings)
    try:
        if system.db.is_sqlite:
            migrate.upgrade(system.db.engine)
        elif not migrate.is_current(system.db.engine):
            raise CliError("the database schema is not up to date: run `mailflow db upgrade` first")
    except OperationalError as exc:
        raise CliError(f"database {loaded.settings.database.url}: {exc.orig}") from exc
    return system


def _serve(args: argparse.Namespace) -> int:
    from mailflow import demo, runner

    loaded = _load(args)
    settings = loaded.settings
    system = _system(loaded)
    base = settings.server.base_url
    print(f"mailflow {__version__} on {base}  (database {settings.database.url})")
    if loaded.source is None:
        print(f"development defaults: secrets kept in {settings.server.data_dir}/")
        print(f"API token: {settings.api.tokens[0]}")
    if args.demo:
        sale_ids = demo.seed(system.services, secrets.token_hex(3))
        print(f"demo: {len(sale_ids)} sales created; the seller emails are in the inbox.")
        for sale_id in sale_ids[:4]:
            print(f"  sale {sale_id}: {system.services.action_url(sale_id, 'view')}")
        print(f"  API docs: {base}/docs   inbox: mailflow inbox")
    if args.workers < 1:
        raise CliError("--workers must be 1 or more")
    try:
        if args.workers > 1:
            if settings.smtp.mode == "embedded":
                print(
                    f"{args.workers} HTTP processes: run `mailflow inbox serve` for the "
                    f"embedded inbox on 127.0.0.1:{settings.smtp.embedded_port}"
                )
            source = str(loaded.source) if loaded.source else None
            runner.serve_processes(system, args.workers, source)
        else:
            asyncio.run(runner.serve(system, with_inbox=settings.smtp.mode == "embedded"))
    except OSError as exc:
        raise CliError(f"cannot listen: {exc}") from exc
    finally:
        system.close()
    return 0


def _worker(args: argparse.Namespace) -> int:
    from mailflow import runner

    system = _system(_load(args))
    try:
        asyncio.run(runner.work(system))
    finally:
        system.close()
    return 0


def _db(args: argparse.Namespace) -> int:
    loaded = _load(args)
    system = build(loaded.settings)
    try:
        migrate.upgrade(system.db.engine)
    except OperationalError as exc:
        raise CliError(f"database {loaded.settings.database.url}: {exc.orig}") from exc
    finally:
        system.close()
    print(f"database at revision {migrate.head_revision()}")
    return 0


def _inbox(args: argparse.Namespace) -> int:
    loaded = _load(args)
    system = _system(loaded)
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


def _sales(args: argparse.Namespace) -> int:
    import json

    from pydantic import ValidationError

    from mailflow.domain.sales import Action, Actor, Channel
    from mailflow.schemas import CancelIn, RefuseIn, WithdrawIn
    from mailflow.services import sales
    from mailflow.services.errors import ServiceError

    system = _system(_load(args))
    command = args.sales_command
    try:
        if command == "show":
            view = sales.get_sale(system.services, args.sale_id)
        else:
            options: dict[str, object] = {}
            if command == "refuse":
                options["reason"] = RefuseIn(reason=args.reason).reason
            elif command == "cancel":
                data = CancelIn(reason=args.reason, message=args.message)
                options.update(reason=data.reason, message=data.message)
            elif command == "withdraw":
                options["note"] = WithdrawIn(note=args.note).note or None
            actor = Actor.SUPPORT
            outcome = sales.transition(
                system.services,
                args.sale_id,
                Action(command),
                actor=actor,
                channel=Channel.CLI,
                **options,  # type: ignore[arg-type]
            )
            view = outcome.sale
            if not outcome.changed:
                print(f"sale {args.sale_id} was already {view['status']}; nothing sent")
    except ValidationError as exc:
        problems = "; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise CliError(problems) from exc
    except ServiceError as exc:
        hint = f" ({i18n.hint('en', exc.hint)})" if exc.hint else ""
        raise CliError(f"sale {args.sale_id}: {exc.message}{hint}") from exc
    finally:
        system.close()
    print(json.dumps(view, indent=2, default=str, ensure_ascii=False))
    return 0


def _sellers(args: argparse.Namespace) -> int:
    from mailflow.mail.formatting import percent
    from mailflow.services import policy

    system = _system(_load(args))
    try:
        rows = policy.stats_all(system.services, over_only=args.over)
        threshold = system.settings.policy.threshold
        count_refusals = system.settings.policy.count_refusals
    finally:
        system.close()
    against = "cancelled + refused/expired" if count_refusals else "cancelled"
    print(f"threshold {percent(threshold, 'en')}; rate = {against} / counted sales in the window")
    print(f"{'id':>6}  {'seller':<30} {'rate':>7} {'tier':<10} {'counted':>7} {'cancelled':>9}")
    for row in rows:
        print(
            f"{row['id']:>6}  {row['name']:<30.30} {percent(row['rate'], 'en'):>7} "
            f"{row['tier']:<10} {row['counted']:>7} {row['cancelled']:>9}"
        )
    if not rows:
        print("no sellers" + (" at or over the threshold" if args.over else ""))
    return 0


COMMANDS = {
    "serve": _serve,
    "sellers": _sellers,
    "worker": _worker,
    "db": _db,
    "inbox": _inbox,
    "sales": _sales,
    "templates": cli_templates.run,
    "admin": cli_admin.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("alembic", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return COMMANDS[args.command](args)
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
