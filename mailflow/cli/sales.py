"""``mailflow sales show|accept|refuse|ship|cancel|withdraw ID``, as customer service."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from mailflow import i18n
from mailflow.cli._common import (
    CliError,
    Refused,
    Subparsers,
    add_json_option,
    command,
    open_data,
    print_json,
)
from mailflow.schemas import CancelIn, RefuseIn, WithdrawIn
from mailflow.services import sales
from mailflow.services.actions import Action, Actor, Channel
from mailflow.services.errors import ServiceError

TRANSITIONS = (
    ("accept", "accept a pending sale"),
    ("refuse", "refuse a pending sale"),
    ("ship", "mark an accepted sale shipped"),
    ("cancel", "cancel an accepted sale (the buyer is refunded)"),
    ("withdraw", "record the buyer's withdrawal (never counts in the rate)"),
)


def add_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    sales_cmd = command(
        sub, "sales", _sales, help="look at a sale or change it, as customer service"
    )
    sales_sub = sales_cmd.add_subparsers(dest="sales_command", required=True, metavar="COMMAND")
    show = sales_sub.add_parser("show", parents=[common], help="a sale, its payment and events")
    show.add_argument("sale_id", type=int, metavar="ID")
    add_json_option(show)  # the sale is printed as JSON either way
    for name, text in TRANSITIONS:
        cmd = sales_sub.add_parser(name, parents=[common], help=text)
        cmd.add_argument("sale_id", type=int, metavar="ID")
        if name in ("refuse", "cancel"):
            cmd.add_argument("--reason", default="out_of_stock", help="reason code")
        if name == "cancel":
            cmd.add_argument("--message", default="", help="message to the buyer")
        if name == "withdraw":
            cmd.add_argument("--note", default="", help="customer service's note")


def _options(args: argparse.Namespace) -> dict[str, object]:
    """The transition's options, checked as the API checks them."""
    command = args.sales_command
    if command == "refuse":
        return {"reason": RefuseIn(reason=args.reason).reason}
    if command == "cancel":
        data = CancelIn(reason=args.reason, message=args.message)
        return {"reason": data.reason, "message": data.message}
    if command == "withdraw":
        return {"note": WithdrawIn(note=args.note).note or None}
    return {}


def _sales(args: argparse.Namespace) -> int:
    system = open_data(args)
    command = args.sales_command
    try:
        if command == "show":
            view = sales.get_sale(system.services, args.sale_id)
        else:
            outcome = sales.transition(
                system.services,
                args.sale_id,
                Action(command),
                actor=Actor.SUPPORT,
                channel=Channel.CLI,
                **_options(args),  # type: ignore[arg-type]
            )
            view = outcome.sale
            if not outcome.changed:
                print(f"sale {args.sale_id} was already {view['status']}; nothing sent")
    except ValidationError as exc:
        problems = "; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise CliError(problems) from exc
    except ServiceError as exc:
        hint = f" ({i18n.hint('en', exc.hint)})" if exc.hint else ""
        raise Refused(f"sale {args.sale_id}: {exc.message}{hint}") from exc
    finally:
        system.close()
    print_json(view)
    return 0
