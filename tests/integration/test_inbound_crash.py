"""A real ``mailflow inbound serve`` killed with SIGKILL while clients are in the middle of
DATA: every message it answered ``250`` is in the database, and is handled once the server
runs again, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from mailflow.inbound.addresses import AddressBook
from mailflow.store.database import Database
from mailflow.store.models import InboundMessage, InboundSpool
from tests.inbound_support import wait_for_empty_spool
from tests.integration.test_crash import SECRET, TOKEN, _write_config, mailflow
from tests.support import free_port

pytestmark = pytest.mark.postgres

DOMAIN = "bounces.test"


def _wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=1) as sock,
                sock.makefile("rb") as greeting,
            ):
                if greeting.readline().startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answers on port {port}")


def test_sigkill_in_the_middle_of_data_loses_nothing_answered_250(
    db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = _write_config(
        tmp_path,
        db_url,
        "",
        'mode = "relay"\nport = 2',
    )
    with config.open("a") as file:
        file.write(f'\n[inbound]\nenabled = true\ndomain = "{DOMAIN}"\nport = {port}\n')
    book = AddressBook([SECRET], DOMAIN, ["bounce"])
    accepted: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def client(offset: int) -> None:
        n = offset
        while not stop.is_set():
            n += 4
            to = book.bounce_address(n)
            body = f"Subject: dsn {n}\r\n\r\n" + "line of a bounce\r\n" * 200
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
                    smtp.ehlo("relay.example")
                    smtp.mail("")
                    smtp.rcpt(to)
                    code, reply = smtp.data(body.encode())
            except (OSError, smtplib.SMTPException) as exc:
                errors.append(str(exc))
                return
            if code == 250:
                accepted.append(int(reply.decode().split("Kept as ", 1)[1]))

    with mailflow("inbound", "serve", "--config", str(config), cwd=tmp_path) as proc:
        _wait_for_port(port)
        # One client stays in the middle of DATA when the kill comes.
        stuck = socket.create_connection(("127.0.0.1", port), timeout=5)
        reader = stuck.makefile("rb")
        reader.readline()
        for line in (b"EHLO x\r\n", b"MAIL FROM:<>\r\n"):
            stuck.sendall(line)
            while reader.readline()[3:4] == b"-":
                pass
        stuck.sendall(f"RCPT TO:<{book.bounce_address(999_999)}>\r\n".encode())
        assert reader.readline().startswith(b"250")
        stuck.sendall(b"DATA\r\n")
        assert reader.readline().startswith(b"354")
        stuck.sendall(b"Subject: never finished\r\n\r\nhalf a mess")
        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(accepted) < 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        stop.set()
        for thread in threads:
            thread.join(10)
        reader.close()
        stuck.close()
    assert len(accepted) >= 12, errors
    db = Database.from_url(db_url)
    try:
        with db.read() as session:
            spooled = set(session.execute(select(InboundSpool.id)).scalars())
            handled = set(session.execute(select(InboundMessage.spool_id)).scalars())
        # Each message answered 250 is kept: handled already, or waiting in the spool.
        assert set(accepted) <= spooled | handled
        # Started again, the server handles what the killed one had kept and not handled.
        with mailflow("inbound", "serve", "--config", str(config), cwd=tmp_path) as proc:
            _wait_for_port(port)
            wait_for_empty_spool(db, timeout=30)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        with db.read() as session:
            rows = session.execute(
                select(InboundMessage.spool_id, InboundMessage.subject, InboundMessage.verdict)
            ).all()
    finally:
        db.dispose()
    verdicts = {spool_id: verdict for spool_id, _, verdict in rows}
    # Made-up outbox rows: each accepted message was handled once.
    assert {verdicts[i] for i in accepted} == {"unknown"}
    assert len(rows) == len(verdicts) == len(spooled | handled)
    assert "never finished" not in {subject for _, subject, _ in rows}


def test_serve_runs_the_inbound_server_when_enabled_and_stops_on_sigterm(
    sqlite_url: str, tmp_path: Path
) -> None:
    http_port, smtp_port = free_port(), free_port()
    config = _write_config(
        tmp_path, sqlite_url, f'host = "127.0.0.1"\nport = {http_port}', 'mode = "relay"\nport = 2'
    )
    with config.open("a") as file:
        file.write(f'\n[inbound]\nenabled = true\ndomain = "{DOMAIN}"\nport = {smtp_port}\n')
    book = AddressBook([SECRET], DOMAIN, ["bounce"])
    with mailflow("serve", "--config", str(config), cwd=tmp_path) as proc:
        _wait_for_port(smtp_port)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.ehlo("relay.example")
            smtp.mail("")
            assert smtp.rcpt(f"postmaster@{DOMAIN}")[0] == 550
            assert smtp.rcpt(book.bounce_address(1))[0] == 250
            assert smtp.data(b"Subject: no bounce\r\n\r\nhello\r\n")[0] == 250
        # Handled by the processor's own process, counted on serve's /metrics.
        handled = 'mailflow_inbound_messages_total{kind="bounce",verdict="unknown"} 1.0'
        deadline = time.monotonic() + 30
        while handled not in (text := _metrics(http_port)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert handled in text
        assert "mailflow_inbound_spool_messages 0.0" in text
        processors = _children(proc.pid)
        assert len(processors) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    # The processor stopped with it.
    assert not Path(f"/proc/{processors[0]}").exists()


def _metrics(port: int) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue
        if int(raw[raw.rfind(")") + 2 :].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_killed_processor_is_started_again_and_handles_what_waits(
    db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = _write_config(tmp_path, db_url, "", 'mode = "relay"\nport = 2')
    with config.open("a") as file:
        file.write(f'\n[inbound]\nenabled = true\ndomain = "{DOMAIN}"\nport = {port}\n')
    book = AddressBook([SECRET], DOMAIN, ["bounce"])
    db = Database.from_url(db_url)
    try:
        with mailflow("inbound", "serve", "--config", str(config), cwd=tmp_path) as proc:
            _wait_for_port(port)
            deadline = time.monotonic() + 30
            while not (first := _children(proc.pid)) and time.monotonic() < deadline:
                time.sleep(0.05)
            [child] = first
            os.kill(child, signal.SIGKILL)
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.ehlo("relay.example")
                for n in range(3):
                    smtp.sendmail("", [book.bounce_address(500 + n)], b"Subject: x\r\n\r\nx\r\n")
            wait_for_empty_spool(db, timeout=30)
            [again] = _children(proc.pid)
            assert again != child
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        with db.read() as session:
            verdicts = list(session.execute(select(InboundMessage.verdict)).scalars())
    finally:
        db.dispose()
    assert verdicts == ["unknown"] * 3
    log = "\n".join(p.read_text() for p in tmp_path.glob("inbound-*.log"))
    assert "task inbound.processor failed" in log and "exited with status -9" in log


@pytest.mark.parametrize(
    ("args", "inbound", "words"),
    [
        ([], "enabled = true", "say what to do"),
        (["serve"], "enabled = false", "inbound.enabled is false"),
        (["serve", "--port", "0"], "enabled = true", "--port must be between 1 and 65535"),
    ],
)
def test_inbound_serve_refuses_what_it_cannot_do_with_status_2(
    sqlite_url: str, tmp_path: Path, args: list[str], inbound: str, words: str
) -> None:
    config = _write_config(tmp_path, sqlite_url, "", 'mode = "relay"\nport = 2')
    with config.open("a") as file:
        file.write(f"\n[inbound]\n{inbound}\n")
    with mailflow("inbound", *args, "--config", str(config), cwd=tmp_path) as proc:
        assert proc.wait(30) == 2
    log = "\n".join(p.read_text() for p in tmp_path.glob("inbound-*.log"))
    assert words in log


def test_inbound_serve_on_a_taken_port_says_so(sqlite_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = _write_config(tmp_path, sqlite_url, "", 'mode = "relay"\nport = 2')
        with config.open("a") as file:
            file.write(f"\n[inbound]\nenabled = true\nport = {port}\n")
        with mailflow("inbound", "serve", "--config", str(config), cwd=tmp_path) as proc:
            assert proc.wait(30) == 2
    log = "\n".join(p.read_text() for p in tmp_path.glob("inbound-*.log"))
    assert "cannot listen" in log and "Traceback" not in log
