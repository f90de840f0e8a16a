"""``mailflow serve`` (HTTP, delivery and the embedded inbox) and ``mailflow worker``."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys

from mailflow import __version__
from mailflow.cli._common import CliError, Subparsers, command, load_settings, open_system


def add_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    serve = command(
        sub,
        "serve",
        _serve,
        parents=[common],
        help="HTTP, delivery worker and (embedded mode) the inbox",
    )
    serve.add_argument("--demo", action="store_true", help="seed sellers and orders to look at")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="HTTP processes (default 1); with more, run `mailflow inbox serve` for the inbox",
    )
    command(
        sub,
        "worker",
        _worker,
        parents=[common],
        help="delivery and the sweeper, without HTTP (more processes)",
    )


def _serve(args: argparse.Namespace) -> int:
    # Imported here: the web stack is heavy, and the other commands do without it.
    from mailflow import demo, runner

    loaded = load_settings(args)
    settings = loaded.settings
    system = open_system(loaded)
    base = settings.server.base_url
    print(f"mailflow {__version__} on {base}  (database {settings.database.url})")
    if loaded.source is None:
        print(f"development defaults: secrets kept in {settings.server.data_dir}/")
        print(f"API token: {settings.api.tokens[0]}")
    if not settings.api.tokens:
        # Allowed (an API nobody may call), but almost always a mistake in the file.
        print(
            "warning: [api] tokens is empty: every /api/ request will be refused with 401",
            file=sys.stderr,
            flush=True,
        )
    if args.demo:
        sale_ids = demo.seed(system.services, secrets.token_hex(3))
        print(f"demo: {len(sale_ids)} sales created; the seller emails are in the inbox.")
        for sale_id in sale_ids[:4]:
            print(f"  sale {sale_id}: {system.services.action_url(sale_id, 'view')}")
        print(f"  API docs: {base}/docs   inbox: mailflow inbox")
    if args.workers < 1:
        raise CliError("--workers must be 1 or more")
    if settings.inbound.enabled:
        where = f"{settings.inbound.host}:{settings.inbound.port}"
        if args.workers > 1:
            where = f"run `mailflow inbound serve` for {where}"
        print(f"inbound SMTP (bounces to *@{settings.inbound.domain}): {where}")
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
            runner.run(runner.serve(system, with_inbox=settings.smtp.mode == "embedded"))
    except OSError as exc:
        raise CliError(f"cannot listen: {exc}") from exc
    finally:
        system.close()
    return 0


def _worker(args: argparse.Namespace) -> int:
    from mailflow import runner

    system = open_system(load_settings(args))
    try:
        asyncio.run(runner.work(system))
    finally:
        system.close()
    return 0
