"""``mailflow admin create-user``: run in-process with ``--password-stdin``, and as a real
process on a pseudo-terminal for the password prompts, against a SQLite file.

A user it makes signs in: the service that the console's sign-in calls accepts the password.
Every refusal (a bad address or role, a short password, two different passwords, a user who
exists) exits with status 2 and a one-line reason, and creates nobody.
"""

from __future__ import annotations

import io
import os
import pty
import secrets
import select
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select as sql_select

from mailflow.bootstrap import build
from mailflow.cli import main
from mailflow.config import load
from mailflow.services import accounts
from mailflow.store.models import AdminUser

PASSWORD = "correct horse battery staple"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
    path = tmp_path / "mailflow.toml"
    path.write_text(
        '[server]\nbase_url = "http://mailflow.test"\n\n'
        f'[database]\nurl = "sqlite:///{tmp_path / "mailflow.db"}"\n\n'
        f'[security]\nsecret_keys = ["{secret}"]\n',
        encoding="utf-8",
    )
    return path


def create_user(
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    capsys.readouterr()
    status = main(["admin", "create-user", *args, "--config", str(config)])
    out, err = capsys.readouterr()
    return status, out, err


def signs_in(config: Path, email: str, password: str) -> accounts.ConsoleUser | None:
    system = build(load(str(config)).settings)
    try:
        return accounts.authenticate(system.services, email, password)
    finally:
        system.close()


def user_count(config: Path) -> int:
    if not (config.parent / "mailflow.db").exists():
        return 0
    system = build(load(str(config)).settings)
    try:
        with system.db.read() as session:
            return session.execute(sql_select(func.count()).select_from(AdminUser)).scalar_one()
    finally:
        system.close()


class TestWithPasswordStdin:
    def test_creates_a_user_who_signs_in(
        self,
        config: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        status, out, err = create_user(
            config,
            capsys,
            monkeypatch,
            "Agent@Shop.example",
            "--role",
            "support",
            "--password-stdin",
            stdin=PASSWORD + "\r\n",
        )
        assert status == 0, err
        assert out == (
            "console user agent@shop.example (support) created; "
            "sign in at http://mailflow.test/admin/login\n"
        )
        user = signs_in(config, "Agent@shop.example", PASSWORD)
        assert user is not None and user.role is accounts.Role.SUPPORT
        assert signs_in(config, "Agent@shop.example", PASSWORD + "\r") is None

    def test_the_password_is_stored_as_an_argon2id_hash(
        self,
        config: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        args = ("boss@shop.example", "--role", "admin", "--password-stdin")
        assert create_user(config, capsys, monkeypatch, *args, stdin=PASSWORD)[0] == 0
        system = build(load(str(config)).settings)
        try:
            with system.db.read() as session:
                [stored] = session.execute(sql_select(AdminUser.password_hash)).scalars()
        finally:
            system.close()
        assert stored.startswith("$argon2id$") and PASSWORD not in stored

    @pytest.mark.parametrize(
        ("args", "stdin", "message"),
        [
            (
                ("not-an-address", "--role", "admin", "--password-stdin"),
                PASSWORD,
                "mailflow: 'not-an-address' is not a valid email address\n",
            ),
            (
                ("a@shop.example", "--role", "admin", "--password-stdin"),
                "too short\n",
                "mailflow: password: must be at least 12 characters\n",
            ),
            (
                ("a@shop.example", "--role", "admin", "--password-stdin"),
                "",
                "mailflow: --password-stdin: standard input is empty\n",
            ),
            (
                ("a@shop.example", "--role", "admin"),
                "",
                "mailflow: no terminal to ask for the password on: pipe it in with "
                "--password-stdin\n",
            ),
        ],
    )
    def test_refusals_create_nobody(
        self,
        config: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        args: tuple[str, ...],
        stdin: str,
        message: str,
    ) -> None:
        status, out, err = create_user(config, capsys, monkeypatch, *args, stdin=stdin)
        assert (status, out, err) == (2, "", message)
        assert user_count(config) == 0

    def test_an_existing_user_is_refused(
        self,
        config: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        args = ("boss@shop.example", "--role", "admin", "--password-stdin")
        assert create_user(config, capsys, monkeypatch, *args, stdin=PASSWORD)[0] == 0
        again = ("boss@shop.example", "--role", "support", "--password-stdin")
        status, _, err = create_user(config, capsys, monkeypatch, *again, stdin="other " + PASSWORD)
        assert status == 1  # refused, not a usage error
        assert err == "mailflow: a user boss@shop.example exists already; nothing was changed\n"
        user = signs_in(config, "boss@shop.example", PASSWORD)
        assert user is not None and user.role is accounts.Role.ADMIN
        assert user_count(config) == 1

    def test_the_role_is_admin_or_support(
        self,
        config: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        with pytest.raises(SystemExit) as exit_:
            create_user(config, capsys, monkeypatch, "a@shop.example", "--role", "root")
        assert exit_.value.code == 2
        assert "argument --role: invalid choice: 'root'" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            create_user(config, capsys, monkeypatch, "a@shop.example")
        assert "the following arguments are required: --role" in capsys.readouterr().err


class Terminal:
    """``mailflow`` run as its own process with a pseudo-terminal as controlling terminal,
    where ``getpass`` asks for the password without echo."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        name = os.ttyname(slave)
        # A session leader that opens a terminal makes it its controlling terminal.
        boot = (
            "import os, sys; os.close(os.open(sys.argv.pop(1), os.O_RDWR)); "
            "from mailflow.cli import main; raise SystemExit(main(sys.argv[1:]))"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", boot, name, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        os.close(slave)
        self.output = b""

    def expect(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} never came; the terminal shows {self.output!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the process ended and closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{text!r} never came; the terminal shows {self.output!r}")
                self.output += chunk

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def finish(self) -> tuple[int, str]:
        status = self.process.wait(60)
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.output += chunk
        os.close(self.master)
        return status, self.output.decode()


@pytest.fixture
def terminal(config: Path) -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def run(*args: str) -> Terminal:
        term = Terminal("admin", "create-user", *args, "--config", str(config))
        opened.append(term)
        return term

    yield run
    for term in opened:
        if term.process.poll() is None:
            term.process.kill()
            term.process.wait()


class TestPrompted:
    def test_the_password_is_asked_twice_without_echo(
        self, config: Path, terminal: Callable[..., Terminal]
    ) -> None:
        term = terminal("ops@shop.example", "--role", "admin")
        term.expect("Password: ")
        term.type(PASSWORD)
        term.expect("Password again: ")
        term.type(PASSWORD)
        status, output = term.finish()
        assert status == 0, output
        assert "console user ops@shop.example (admin) created" in output
        assert PASSWORD not in output  # never echoed
        user = signs_in(config, "ops@shop.example", PASSWORD)
        assert user is not None and user.role is accounts.Role.ADMIN

    def test_two_different_passwords_create_nobody(
        self, config: Path, terminal: Callable[..., Terminal]
    ) -> None:
        term = terminal("ops@shop.example", "--role", "support")
        term.expect("Password: ")
        term.type(PASSWORD)
        term.expect("Password again: ")
        term.type(PASSWORD + "x")
        status, output = term.finish()
        assert status == 2
        assert "mailflow: the two passwords differ; nothing was changed" in output
        assert user_count(config) == 0

    def test_a_short_password_is_refused_at_once(
        self, config: Path, terminal: Callable[..., Terminal]
    ) -> None:
        term = terminal("ops@shop.example", "--role", "support")
        term.expect("Password: ")
        term.type("short")
        status, output = term.finish()
        assert status == 2
        assert "Password again" not in output
        assert "the password must be at least 12 characters; nothing was changed" in output
        assert user_count(config) == 0


class TestSetPassword:
    def test_a_new_password_signs_the_user_out_everywhere(
        self,
        config: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        status, _, err = create_user(
            config,
            capsys,
            monkeypatch,
            "agent@shop.example",
            "--role",
            "support",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        assert status == 0, err
        system = build(load(str(config)).settings)
        try:
            user = accounts.authenticate(system.services, "agent@shop.example", PASSWORD)
            assert user is not None
            tokens = [
                accounts.start_session(system.services, accounts.SessionKind.CONSOLE, user.id)
                for _ in range(2)
            ]
        finally:
            system.close()

        monkeypatch.setattr(sys, "stdin", io.StringIO("another long password\n"))
        capsys.readouterr()
        args = ["admin", "set-password", "Agent@Shop.example", "--password-stdin"]
        status = main([*args, "--config", str(config)])
        out, err = capsys.readouterr()
        assert (status, out, err) == (
            0,
            "new password for agent@shop.example; 2 session(s) signed out\n",
            "",
        )
        assert signs_in(config, "agent@shop.example", PASSWORD) is None
        assert signs_in(config, "agent@shop.example", "another long password") is not None
        system = build(load(str(config)).settings)
        try:
            for token in tokens:
                kind = accounts.SessionKind.CONSOLE
                assert accounts.session_subject(system.services, token, kind) is None
        finally:
            system.close()

    @pytest.mark.parametrize(
        ("email", "stdin", "message"),
        [
            ("nobody@shop.example", PASSWORD, "no console user nobody@shop.example"),
            ("agent@shop.example", "short", "password: must be at least 12 characters"),
        ],
    )
    def test_refusals_change_nothing(
        self,
        config: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        email: str,
        stdin: str,
        message: str,
    ) -> None:
        create_user(
            config,
            capsys,
            monkeypatch,
            "agent@shop.example",
            "--role",
            "support",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin + "\n"))
        capsys.readouterr()
        status = main(["admin", "set-password", email, "--password-stdin", "--config", str(config)])
        _, err = capsys.readouterr()
        assert status == 2
        assert err == f"mailflow: {message}; nothing was changed\n"
        assert signs_in(config, "agent@shop.example", PASSWORD) is not None
