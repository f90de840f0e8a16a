"""``mailflow serve`` (HTTP, delivery and the embedded inbox) and ``mailflow worker``.

``serve`` binds its ports before anything else: a start that cannot listen stops with the
setting to change, before the database is touched or the demo seeded. When ``server.base_url``
is not set, links follow the address actually served (``--host``/``--port``, the
``MAILFLOW_SERVER__*`` variables, or the port the system picked for ``--port 0``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from mailflow import __version__, logs
from mailflow.cli._common import (
    CliError,
    Refused,
    Subparsers,
    add_listen_options,
    check_port,
    command,
    load_settings,
    open_system,
)
from mailflow.config import Loaded, Settings
from mailflow.services.errors import ServiceError


def add_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    serve = command(
        sub,
        "serve",
        _serve,
        parents=[common],
        help="HTTP, delivery worker and (embedded mode) the inbox",
    )
    serve.add_argument(
        "--demo", action="store_true", help="seed sellers, orders and a console user (once)"
    )
    add_listen_options(serve, "server")
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
    from mailflow import demo, listen, runner

    if args.workers < 1:
        raise CliError("--workers must be 1 or more")
    loaded = load_settings(args)
    logs.configure(loaded.settings.server.log_format, loaded.settings.server.log_level)
    settings = _listening_on(loaded.settings, args.host, check_port(args.port))
    with_inbox = settings.smtp.mode == "embedded" and args.workers == 1
    try:
        # Inbound mail in this process only: with --workers N, `mailflow inbound serve`.
        with_inbound = settings.inbound.enabled and args.workers == 1
        listeners = runner.bind(settings, with_inbox=with_inbox, with_inbound=with_inbound)
    except listen.CannotListen as exc:
        raise CliError(f"{exc}; nothing was started") from exc
    # With --port 0 the system picked the port: links point at that one.
    settings = _listening_on(settings, None, listen.port_of(listeners.http))
    try:
        system = open_system(Loaded(settings, loaded.source))
    except BaseException:
        listeners.close()
        raise
    try:
        try:
            seeded = (
                demo.seed(system.services, Path(settings.server.data_dir)) if args.demo else None
            )
        except ServiceError as exc:
            # e.g. a seller of this database already has a demo seller's address.
            raise Refused(f"--demo: {exc.message}; the server was not started") from exc
        print(_banner(settings, loaded.source, seeded), flush=True)
        if args.workers > 1:
            print(
                f"{args.workers} HTTP processes: run `mailflow inbox serve` for the embedded "
                f"inbox on 127.0.0.1:{settings.smtp.embedded_port}",
                flush=True,
            )
            if settings.inbound.enabled:
                print(
                    "run `mailflow inbound serve` for the inbound SMTP server on "
                    f"{settings.inbound.host}:{settings.inbound.port}",
                    flush=True,
                )
            source = str(loaded.source) if loaded.source else None
            # Each HTTP process loads the settings again: give it the address served.
            os.environ["MAILFLOW_SERVER__BASE_URL"] = settings.server.base_url
            runner.serve_processes(system, args.workers, source, listeners)
        else:
            runner.run(runner.serve(system, with_inbox=with_inbox, listeners=listeners))
    except OSError as exc:
        raise CliError(f"cannot serve: {exc}") from exc
    finally:
        listeners.close()
        system.close()
    return 0


def _listening_on(settings: Settings, host: str | None, port: int | None) -> Settings:
    return settings.model_copy(update={"server": settings.server.listening_on(host, port)})


def _banner(settings: Settings, source: Path | None, seeded: object) -> str:
    """Where to go: printed once the ports are bound (and the demo seeded)."""
    from mailflow.demo import Demo

    base = settings.server.base_url
    lines = [f"mailflow {__version__} serving {base}  (database {settings.database.url})"]
    if source is None:
        lines.append(f"development defaults: secrets kept in {settings.server.data_dir}/")
        lines.append(f"API token: {settings.api.tokens[0]}")
    if not settings.api.tokens:
        # Allowed (an API nobody may call), but almost always a mistake in the file.
        print(
            "warning: [api] tokens is empty: every /api/ request will be refused with 401",
            file=sys.stderr,
            flush=True,
        )
    if isinstance(seeded, Demo):
        made = (
            f"{seeded.new_sales} sales created"
            if seeded.new_sales
            else "already seeded, nothing added"
        )
        lines += [
            "",
            f"Demo: {made} ({len(seeded.sale_ids)} demo sales); look around:",
            f"  Admin console  {base}/admin",
            f"                 sign in as {seeded.console_email} / {seeded.console_password}",
            f"  Seller portal  one-time sign-in links (15 minutes; more at {base}/seller/login):",
            *(f"                 {link.name}: {link.url}" for link in seeded.seller_links),
        ]
    else:
        lines += [
            "",
            f"  Admin console  {base}/admin  (users: `mailflow admin create-user EMAIL`)",
            f"  Seller portal  {base}/seller",
        ]
    if settings.smtp.mode == "embedded":
        lines.append(f"  Dev inbox      {base}/admin/inbox  (or `mailflow inbox`)")
    inbound = settings.inbound
    if inbound.enabled:
        lines.append(
            f"  Inbound SMTP   {inbound.host}:{inbound.port}  (bounces and replies to "
            f"*@{inbound.domain})"
        )
    lines.append(f"  API docs       {base}/docs  (and {base}/redoc)")
    return "\n".join(lines)


def _worker(args: argparse.Namespace) -> int:
    from mailflow import runner

    loaded = load_settings(args)
    logs.configure(loaded.settings.server.log_format, loaded.settings.server.log_level)
    system = open_system(loaded)
    try:
        asyncio.run(runner.work(system))
    finally:
        system.close()
    return 0
