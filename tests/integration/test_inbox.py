"""The embedded SMTP inbox: what it accepts is committed before it answers 250.

The server runs on its own event loop in a thread, as it does inside ``mailflow serve``; mail
goes in with aiosmtplib (or with the delivery worker), and ``mailflow inbox`` lists it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow import cli
from mailflow.bootstrap import System
from mailflow.clock import Clock
from mailflow.mail.inbox import InboxServer
from mailflow.store.database import Database
from mailflow.store.messages import Messages, Slice
from mailflow.store.models import InboxMessage, OutboxMessage
from tests import factories
from tests.support import MovableClock, deliver, free_port, links_in

pytestmark = pytest.mark.postgres

SECRET = "inbox-test-secret-" + "s" * 32
SUBJECT = "Commande n°42 — « Le Petit Prince »"
MESSAGE_ID = "<inbox-test-1@shop.example>"


@contextmanager
def inbox_server(db: Database, clock: Clock, port: int) -> Iterator[InboxServer]:
    """``InboxServer`` on its own loop in a thread, listening before this returns."""
    server = InboxServer(db, clock, "127.0.0.1", port)
    started = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        state["loop"] = asyncio.get_running_loop()
        state["stop"] = stop = asyncio.Event()
        try:
            await server.start()
        finally:
            started.set()
        await stop.wait()
        await server.stop()

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            state["error"] = exc
            started.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert started.wait(10)
    assert "error" not in state, state.get("error")
    try:
        yield server
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)
        assert not thread.is_alive()
        assert "error" not in state, state.get("error")


def _raw_message() -> bytes:
    lines = [
        "From: Shop <orders@shop.example>",
        "To: Inbox Test <someone@mail.example>",
        "Subject: =?utf-8?q?Commande_n=C2=B042_=E2=80=94_=C2=AB_Le_Petit_Prince_=C2=BB?=",
        "Date: Fri, 27 Nov 2026 09:00:00 +0000",
        f"Message-ID: {MESSAGE_ID}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Bonjour,",
        ".a line that starts with a dot (dot-stuffed on the wire)",
        "..",
        "=C3=A0 bient=C3=B4t",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")


def _inbox_rows(db: Database) -> list[InboxMessage]:
    with db.read() as session:
        return list(session.execute(select(InboxMessage).order_by(InboxMessage.id)).scalars())


def _write_config(tmp_path: Path, db_url: str, **smtp: Any) -> Path:
    smtp_lines = "\n".join(f"{key} = {value!r}" for key, value in smtp.items())
    path = tmp_path / "cfg.toml"
    path.write_text(
        f"""
[server]
data_dir = "{tmp_path / "data"}"

[database]
url = "{db_url}"

[smtp]
mode = "embedded"
{smtp_lines}

[security]
secret_keys = ["{SECRET}"]
""",
        encoding="utf-8",
    )
    return path


MAILFLOW = str(Path(sys.executable).parent / "mailflow")


def _mailflow(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The installed ``mailflow`` console script, without any MAILFLOW_* from the outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    return subprocess.run(
        [MAILFLOW, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def _clear_mailflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MAILFLOW_"):
            monkeypatch.delenv(name)


class TestEmbeddedInbox:
    def test_committed_before_250_then_listed_by_the_cli(
        self, db_url: str, tmp_path: Path, clock: MovableClock
    ) -> None:
        db = Database.from_url(db_url)
        port = free_port()
        raw = _raw_message()
        try:
            with inbox_server(db, clock, port):
                errors, reply = asyncio.run(
                    aiosmtplib.send(
                        raw,
                        sender="orders@shop.example",
                        recipients=["someone@mail.example", "other@mail.example"],
                        hostname="127.0.0.1",
                        port=port,
                        start_tls=False,
                    )
                )
                # send() has returned: the server said 250, so the row is already committed.
                assert errors == {}
                assert reply.startswith("Message accepted")
                [row] = _inbox_rows(db)
            assert row.message_id == MESSAGE_ID
            assert row.subject == SUBJECT
            assert row.raw == raw
            assert row.mail_from == "orders@shop.example"
            assert row.rcpt_to == "someone@mail.example, other@mail.example"
            assert row.received_at is not None
            parsed = message_from_bytes(row.raw, policy=policy.default)
            assert parsed["Subject"] == SUBJECT
            assert parsed.get_content().startswith("Bonjour,")
            stored = Messages(db)
            listed = [stored.inbox_message(m.id) for m in stored.inbox(Slice(0, 50))]
            assert [m.message_id for m in listed if m] == [MESSAGE_ID]
        finally:
            db.dispose()

        config = _write_config(tmp_path, db_url, embedded_port=port)
        listed = _mailflow("inbox", "--config", str(config), cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert SUBJECT in listed.stdout
        assert "someone@mail.example" in listed.stdout
        [line] = listed.stdout.splitlines()
        assert line.startswith(f"{row.id:>6}  2026-11-2")

    def test_a_long_message_id_is_kept(self, db_url: str, clock: MovableClock) -> None:
        """RFC 5322 sets no length for a Message-ID; the dev inbox keeps what it is sent."""
        db = Database.from_url(db_url)
        port = free_port()
        long_id = "<" + "x" * 300 + "@shop.example>"
        raw = (
            "From: a@shop.example\r\nTo: b@mail.example\r\nSubject: long id\r\n"
            f"Message-ID: {long_id}\r\n\r\nbody\r\n"
        ).encode()
        try:
            with inbox_server(db, clock, port):
                errors, _ = asyncio.run(
                    aiosmtplib.send(
                        raw,
                        sender="a@shop.example",
                        recipients=["b@mail.example"],
                        hostname="127.0.0.1",
                        port=port,
                    )
                )
                assert errors == {}
                [row] = _inbox_rows(db)
            assert row.raw == raw
            assert row.subject == "long id"
        finally:
            db.dispose()

    def test_several_messages_newest_first_and_limit(
        self,
        db_url: str,
        tmp_path: Path,
        clock: MovableClock,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        db = Database.from_url(db_url)
        port = free_port()

        async def send_three() -> None:
            for n in range(3):
                raw = (
                    f"From: a@shop.example\r\nTo: b@mail.example\r\nSubject: number {n}\r\n"
                    f"Message-ID: <n{n}@shop.example>\r\n\r\nbody {n}\r\n"
                ).encode()
                await aiosmtplib.send(
                    raw,
                    sender="a@shop.example",
                    recipients=["b@mail.example"],
                    hostname="127.0.0.1",
                    port=port,
                )

        try:
            with inbox_server(db, clock, port):
                asyncio.run(send_three())
            assert [r.subject for r in _inbox_rows(db)] == ["number 0", "number 1", "number 2"]
        finally:
            db.dispose()
        # The same command, in this process this time (cheaper than a subprocess).
        _clear_mailflow_env(monkeypatch)
        config = _write_config(tmp_path, db_url, embedded_port=port)
        capsys.readouterr()
        assert cli.main(["inbox", "--config", str(config), "--limit", "2"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 2
        assert "number 2" in lines[0] and "number 1" in lines[1]
        assert cli.main(["inbox", "--config", str(config), "--limit", "0"]) == 2
        assert "--limit must be 1 or more" in capsys.readouterr().err

    def test_empty_inbox(
        self,
        db_url: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        _clear_mailflow_env(monkeypatch)
        config = _write_config(tmp_path, db_url)
        capsys.readouterr()
        assert cli.main(["inbox", "--config", str(config)]) == 0
        assert "the inbox is empty" in capsys.readouterr().out

    def test_the_worker_delivers_into_the_embedded_inbox(
        self,
        api: TestClient,
        db_url: str,
        make_system: Callable[..., System],
        clock: MovableClock,
    ) -> None:
        port = free_port()
        embedded = make_system(db_url, smtp={"mode": "embedded", "embedded_port": port})
        seller = factories.seller(api)
        factories.order(api, seller["id"])
        with embedded.db.read() as session:
            [queued] = session.execute(select(OutboxMessage)).scalars()

        with inbox_server(embedded.db, clock, port):
            assert deliver(embedded) == 1
            [row] = _inbox_rows(embedded.db)
        assert row.message_id == queued.message_id
        assert row.raw == queued.body
        assert row.subject == queued.subject
        assert row.rcpt_to == seller["email"]
        message = message_from_bytes(row.raw, policy=policy.default)
        assert message["X-Mailflow-Template"] == "seller_new_sale"
        assert len(links_in(message)) == 3  # type: ignore[arg-type]
