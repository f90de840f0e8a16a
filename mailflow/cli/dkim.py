"""``mailflow dkim keygen``: a DKIM key pair, and the DNS record that publishes it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mailflow.cli._common import CliError, Subparsers, command
from mailflow.mail.dkim import (
    DEFAULT_RSA_BITS,
    DkimError,
    DkimKey,
    check_name,
    dns_record,
    dns_zone_line,
    generate_key,
)


def add_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    dkim = command(sub, "dkim", _dkim, help="DKIM signing keys")
    dkim_sub = dkim.add_subparsers(dest="dkim_command", required=True, metavar="COMMAND")
    keygen = dkim_sub.add_parser(
        "keygen", help="write a new key pair and print the DNS TXT record to publish"
    )
    keygen.add_argument("--selector", required=True, help="the selector (s=), e.g. mf2026")
    keygen.add_argument("--domain", required=True, help="the signing domain (d=)")
    keygen.add_argument(
        "--out", default=".", metavar="DIR", help="where to write the files (default: here)"
    )
    keygen.add_argument(
        "--algorithm",
        choices=("rsa", "ed25519"),
        default="rsa",
        help="rsa (default, what every receiver checks) or ed25519 (RFC 8463)",
    )
    keygen.add_argument(
        "--bits", type=int, default=DEFAULT_RSA_BITS, help=f"RSA size (default {DEFAULT_RSA_BITS})"
    )


def _dkim(args: argparse.Namespace) -> int:
    try:
        selector = check_name(args.selector, "--selector")
        domain = check_name(args.domain, "--domain")
        pem = generate_key(args.algorithm, args.bits)
        key = DkimKey.from_pem(pem)
    except DkimError as exc:
        raise CliError(f"{exc.setting}: {exc}") from exc
    out = Path(args.out)
    if not out.is_dir():
        raise CliError(f"--out {out}: no such folder")
    private = out / f"{selector}.{domain}.private.pem"
    record = out / f"{selector}.{domain}.dns.txt"
    for path in (private, record):
        if path.exists():
            raise CliError(f"{path} exists already; choose another selector or folder")
    line = dns_zone_line(key, selector, domain)
    try:
        # Readable by its owner only, from its creation on.
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        record.write_text(line + "\n", encoding="ascii")
    except OSError as exc:
        raise CliError(f"cannot write in {out}: {exc.strerror or exc}") from exc
    print(f"private key: {private} (keep it secret; mode 600)")
    print(f"DNS record:  {record}")
    print()
    print(f"Publish this TXT record at {selector}._domainkey.{domain}:")
    print()
    print(line)
    print()
    print(f"(the value alone: {dns_record(key)})")
    print()
    print("Then, in the configuration:")
    print()
    print("[smtp]")
    print(f'dkim_domain = "{domain}"')
    print(f'dkim_selector = "{selector}"')
    print(f'dkim_private_key_file = "{private.resolve()}"')
    return 0
