"""A newcomer's first run (SPEC §10): ``mailflow serve --demo`` in an empty folder, run twice;
a busy port; ``MAILFLOW_SERVER__PORT`` and ``--port``; the data commands in a folder with
nothing; ``mailflow`` alone; exit statuses.

``serve`` runs as its own process in a temporary folder (no configuration file: the
development defaults, as the README's first command), on free ports, and is stopped with
SIGTERM once it says it is listening.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mailflow.cli import main
from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
LISTENING = "HTTP listening on"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    env["PYTHONPATH"] = str(REPO)
    env["MAILFLOW_SMTP__EMBEDDED_PORT"] = str(free_port())
    env.update(extra)
    return env


def _serve(cwd: Path, *args: str, **env: str) -> tuple[subprocess.Popen[str], str]:
    """``mailflow serve ARGS`` in ``cwd``: the process and its output up to the listening
    line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailflow", "serve", *args],
        cwd=cwd,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    out = ""
    deadline = time.monotonic() + 60
    while LISTENING not in out:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise AssertionError(f"serve stopped: {out}")
        if time.monotonic() > deadline:
            _stop(proc)
            raise AssertionError(f"serve did not start: {out}")
        out += line
    return proc, out


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


class TestDemo:
    def test_seeded_once_with_credentials_and_links_that_follow_the_served_port(
        self, tmp_path: Path
    ) -> None:
        port = free_port()
        proc, first = _serve(tmp_path, "--demo", MAILFLOW_SERVER__PORT=str(port))
        try:
            base = f"http://127.0.0.1:{port}"
            assert f"serving {base}" in first
            assert "Demo: 9 sales created" in first
            assert f"Admin console  {base}/admin" in first
            signin = re.search(r"sign in as (\S+) / (\S+)", first)
            assert signin and signin.group(1) == "demo@mailflow.example"
            links = re.findall(r"(http://\S+/seller/login/\S+)", first)
            assert len(links) == 2 and all(link.startswith(base) for link in links)
            assert f"API docs       {base}/docs" in first
            assert _get(f"{base}/healthz")[0] == 200
            # A printed login link answers its confirmation page (a GET spends nothing).
            status, page = _get(links[0])
            assert status == 200 and "<form" in page
        finally:
            _stop(proc)
        db = tmp_path / "mailflow.db"
        bodies = [row[0] for row in _rows(db, "SELECT body FROM outbox")]
        assert bodies and all(f"{base}/s/".encode() in body for body in bodies[:1])
        sales = _rows(db, "SELECT count(*) FROM sales")[0][0]
        # The demo's unreachable seller's bounce tells support once, whichever run it reaches.
        seeded_mail = "SELECT count(*) FROM outbox WHERE template <> 'support_seller_unreachable'"
        mails = _rows(db, seeded_mail)[0][0]

        other = free_port()
        proc, again = _serve(tmp_path, "--demo", "--port", str(other))
        _stop(proc)
        assert "already seeded, nothing added (9 demo sales)" in again
        assert f"sign in as demo@mailflow.example / {signin.group(2)}" in again
        assert re.findall(r"http://127\.0\.0\.1:(\d+)/seller/login/", again) == [str(other)] * 2
        assert _rows(db, "SELECT count(*) FROM sales")[0][0] == sales
        assert _rows(db, "SELECT count(*) FROM sellers")[0][0] == 3
        assert _rows(db, seeded_mail)[0][0] == mails
        assert _rows(db, "SELECT count(*) FROM admin_users")[0][0] == 1

    def test_a_busy_port_stops_the_start_before_anything_is_made(self, tmp_path: Path) -> None:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            done = subprocess.run(
                [sys.executable, "-m", "mailflow", "serve", "--demo", "--port", str(port)],
                cwd=tmp_path,
                env=_env(),
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert done.returncode == 2
        assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
        assert "server.port" in done.stderr and "Traceback" not in done.stderr
        assert not (tmp_path / "mailflow.db").exists()
        assert done.stdout == ""

    def test_a_busy_inbox_port_names_its_setting(self, tmp_path: Path) -> None:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            taken = str(busy.getsockname()[1])
            done = subprocess.run(
                [sys.executable, "-m", "mailflow", "serve", "--demo", "--port", "0"],
                cwd=tmp_path,
                env=_env(MAILFLOW_SMTP__EMBEDDED_PORT=taken),
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert done.returncode == 2
        assert f"cannot listen on 127.0.0.1:{taken}" in done.stderr
        assert "smtp.embedded_port" in done.stderr
        assert not (tmp_path / "mailflow.db").exists()


class TestDataCommandsInAnEmptyFolder:
    @pytest.mark.parametrize(
        "args",
        [
            ["inbox"],
            ["inbox", "show", "1"],
            ["sellers", "stats"],
            ["sales", "show", "1"],
            ["templates", "list"],
        ],
        ids=lambda a: " ".join(a),
    )
    def test_say_so_exit_1_and_create_nothing(
        self,
        args: list[str],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.chdir(tmp_path)
        for name in [n for n in os.environ if n.startswith("MAILFLOW_")]:
            monkeypatch.delenv(name)
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "no database here (mailflow.db) and no mailflow.toml" in err
        assert list(tmp_path.iterdir()) == []


class TestCommandLine:
    def test_mailflow_alone_prints_the_help(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main([]) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: mailflow") and "serve" in out and "inbox" in out

    def test_a_usage_error_is_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as exit_:
            main(["sales", "show", "not-a-number"])
        assert exit_.value.code == 2

    def test_a_refusal_is_1_and_data_comes_as_json(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.chdir(tmp_path)
        for name in [n for n in os.environ if n.startswith("MAILFLOW_")]:
            monkeypatch.delenv(name)
        assert main(["db", "upgrade"]) == 0
        capsys.readouterr()
        assert main(["sales", "show", "999"]) == 1
        assert "sale 999" in capsys.readouterr().err
        assert main(["sales", "accept", "999"]) == 1
        capsys.readouterr()
        assert main(["sellers", "stats", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == []
        assert main(["inbox", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == []
        assert main(["templates", "list", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert {"key", "locale", "published_version"} <= set(rows[0])
        assert main(["templates", "show", "seller_new_sale", "fr", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["version"] == 0
        assert main(["inbox", "show", "1"]) == 1
        assert "no inbox message 1" in capsys.readouterr().err


def test_inbox_show_prints_the_text_and_the_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailflow.bootstrap import build
    from mailflow.config import load
    from mailflow.mail.inbox import InboxHandler

    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("MAILFLOW_")]:
        monkeypatch.delenv(name)
    assert main(["db", "upgrade"]) == 0
    system = build(load().settings)
    raw = (
        b"From: shop@example.org\r\nTo: bob@records.example\r\nSubject: Nouvelle vente\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Accepter : http://127.0.0.1:8000/s/abc\r\n"
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b'<p><a href="http://127.0.0.1:8000/s/abc">Accepter la vente</a>'
        b' <a href="http://127.0.0.1:8000/s/def">Refuser</a></p>\r\n--b--\r\n'
    )
    message_id = InboxHandler(system.db, system.clock).store(
        "shop@example.org", ["bob@records.example"], raw
    )
    system.close()
    capsys.readouterr()
    assert main(["inbox", "show", str(message_id)]) == 0
    out = capsys.readouterr().out
    assert "Subject: Nouvelle vente" in out
    assert "Accepter : http://127.0.0.1:8000/s/abc" in out
    assert "links (2):" in out
    assert "  http://127.0.0.1:8000/s/abc  [Accepter la vente]" in out
    assert "  http://127.0.0.1:8000/s/def  [Refuser]" in out
    assert main(["inbox", "show", str(message_id), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [link["url"] for link in shown["links"]] == [
        "http://127.0.0.1:8000/s/abc",
        "http://127.0.0.1:8000/s/def",
    ]
    assert main(["inbox", "--search", "nouvelle"]) == 0
    assert "bob@records.example" in capsys.readouterr().out
    assert main(["inbox", "--search", "nothing-like-it"]) == 0
    assert capsys.readouterr().out == "no message matches\n"
