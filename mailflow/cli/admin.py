"""``mailflow admin create-user EMAIL --role admin|support [--password-stdin]`` and
``mailflow admin set-password EMAIL [--password-stdin]``.

Makes a console user through ``services.accounts.create_user`` (the password is stored as an
Argon2id hash). The password is asked twice on the terminal, without echo; with
``--password-stdin`` it is the first line of standard input (for scripts), asked once. The
email and role are checked before the password is asked for, and nothing is written unless
everything is right. A new password ends every session of the user (every browser signed in
with the old one is signed out).
"""

from __future__ import annotations

import argparse
import getpass
import sys

from mailflow.cli._common import (
    CliError,
    Refused,
    Subparsers,
    command,
    load_settings,
    open_system,
)
from mailflow.config import Loaded
from mailflow.services import accounts
from mailflow.services.errors import Conflict, InvalidInput, NotFound

ROLES = [role.value for role in accounts.Role]


def add_parsers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    """Add ``admin`` and its commands to the top-level subparsers ``sub``."""
    parser = command(sub, "admin", _create_user, help="console users (the /admin pages)")
    commands = parser.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    # What both commands take: the user, and how the password comes.
    user = argparse.ArgumentParser(add_help=False, parents=[common])
    user.add_argument("email", metavar="EMAIL", help="the user's email address (the login)")
    user.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of asking",
    )
    create = commands.add_parser(
        "create-user",
        parents=[user],
        help="make a console user who signs in at /admin/login",
        description=(
            "Make a console user. admin: everything, templates included; support: sellers, "
            "sales (record withdrawals), outbox and inbox. The password (at least "
            f"{accounts.MIN_PASSWORD_LENGTH} characters) is asked twice on the terminal."
        ),
    )
    create.add_argument("--role", required=True, choices=ROLES, help="admin or support")
    create.set_defaults(handler=_create_user)
    reset = commands.add_parser(
        "set-password",
        parents=[user],
        help="give a console user a new password and sign them out everywhere",
        description=(
            "Give a console user a new password (asked twice on the terminal). Every browser "
            "signed in as the user is signed out."
        ),
    )
    reset.set_defaults(handler=_set_password)


def _credentials(args: argparse.Namespace) -> tuple[str, Loaded, str]:
    """The user's address, the settings and the password, in the order they are checked:
    nothing is asked for while the address or the configuration is wrong."""
    email = accounts.normalized_email(args.email)
    if email is None:
        raise CliError(f"{args.email!r} is not a valid email address")
    loaded = load_settings(args)
    return email, loaded, read_password(args.password_stdin)


def _set_password(args: argparse.Namespace) -> int:
    email, loaded, password = _credentials(args)
    system = open_system(loaded)
    try:
        ended = accounts.set_password(system.services, email, password)
    except (InvalidInput, NotFound) as exc:
        raise CliError(f"{exc.message}; nothing was changed") from exc
    finally:
        system.close()
    print(f"new password for {email}; {ended} session(s) signed out")
    return 0


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CliError("--password-stdin: standard input is empty")
        return line.rstrip("\r\n")
    try:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        interactive = False
    if not interactive:
        raise CliError("no terminal to ask for the password on: pipe it in with --password-stdin")
    password = getpass.getpass("Password: ")
    if len(password) < accounts.MIN_PASSWORD_LENGTH:
        raise CliError(
            f"the password must be at least {accounts.MIN_PASSWORD_LENGTH} characters; "
            "nothing was changed"
        )
    if getpass.getpass("Password again: ") != password:
        raise CliError("the two passwords differ; nothing was changed")
    return password


def _create_user(args: argparse.Namespace) -> int:
    email, loaded, password = _credentials(args)
    system = open_system(loaded)
    try:
        user = accounts.create_user(system.services, email, args.role, password)
    except InvalidInput as exc:
        raise CliError(f"{exc.field}: {exc.message.removeprefix(exc.field + ': ')}") from exc
    except Conflict as exc:
        raise Refused(f"{exc.message}; nothing was changed") from exc
    finally:
        system.close()
    base = loaded.settings.server.base_url
    print(f"console user {user.email} ({user.role.value}) created; sign in at {base}/admin/login")
    return 0
