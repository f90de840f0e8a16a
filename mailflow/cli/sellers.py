"""``mailflow sellers stats``: the sellers' cancellation rates and tiers."""

from __future__ import annotations

import argparse

from mailflow.cli._common import Subparsers, add_json_option, command, open_data, print_json
from mailflow.mail.formatting import percent
from mailflow.services import policy


def add_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    sellers_cmd = command(sub, "sellers", _sellers, help="sellers and their cancellation rates")
    sellers_sub = sellers_cmd.add_subparsers(
        dest="sellers_command", required=True, metavar="COMMAND"
    )
    stats = sellers_sub.add_parser("stats", parents=[common], help="a table of rates and tiers")
    stats.add_argument("--over", action="store_true", help="only sellers at or over the threshold")
    add_json_option(stats)


def _sellers(args: argparse.Namespace) -> int:
    system = open_data(args)
    try:
        rows = policy.stats_all(system.services, over_only=args.over)
        threshold = system.settings.policy.threshold
        count_refusals = system.settings.policy.count_refusals
    finally:
        system.close()
    if args.json:
        print_json(rows)
        return 0
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
