"""``mailflow inbound serve [--host H] [--port P]``: the inbound SMTP server on its own."""

from __future__ import annotations

import argparse

from mailflow.cli._common import CliError, Subparsers, command, load_settings, open_system


def add_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    inbound = command(
        sub, "inbound", _inbound, parents=[common], help="the inbound SMTP server (bounces)"
    )
    inbound_sub = inbound.add_subparsers(dest="inbound_command", metavar="COMMAND")
    serve = inbound_sub.add_parser(
        "serve", parents=[common], help="run the inbound SMTP server on its own"
    )
    serve.add_argument("--host", help="address to listen on (default [inbound] host)")
    serve.add_argument("--port", type=int, help="port to listen on (default [inbound] port)")


def _inbound(args: argparse.Namespace) -> int:
    if args.inbound_command != "serve":
        raise CliError("say what to do: mailflow inbound serve [--host H] [--port P]")
    port = args.port
    if port is not None and not 1 <= port <= 65535:
        raise CliError("--port must be between 1 and 65535")
    loaded = load_settings(args)
    if not loaded.settings.inbound.enabled:
        raise CliError(
            "inbound.enabled is false: outgoing mail does not name a bounce address, so "
            "there is nothing to receive; set [inbound] enabled = true"
        )
    system = open_system(loaded)
    try:
        from mailflow import runner

        runner.run(runner.inbound_only(system, args.host, port))
    except OSError as exc:
        raise CliError(f"cannot listen (set [inbound] port or --port): {exc}") from exc
    finally:
        system.close()
    return 0
