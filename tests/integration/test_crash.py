"""Real processes: a worker killed mid-send loses nothing; ``serve`` stops cleanly on SIGTERM.

The ``mailflow`` console script runs as a subprocess with a TOML file written here, on the
real clock; the mail is queued through the API of a system built from that same file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailflow.bootstrap import build
from mailflow.config import load
from mailflow.store.database import Database
from mailflow.store.models import InboxMessage, OutboxMessage
from mailflow.web.app import create_app
from tests import factories
from tests.support import RelayHandler, free_port, wait_for

pytestmark = pytest.mark.postgres

MAILFLOW = str(Path(sys.executable).parent / "mailflow")
SECRET = "crash-test-secret-" + "c" * 32
TOKEN = "crash-test-token-" + "t" * 24
LEASE_SECONDS = 2


def _write_config(tmp_path: Path, db_url: str, server: str, smtp: str) -> Path:
    path = tmp_path / "cfg.toml"
    path.write_text(
        f"""
[server]
base_url = "http://mailflow.test"
data_dir = "{tmp_path / "data"}"
{server}

[database]
url = "{db_url}"

[smtp]
{smtp}

[security]
secret_keys = ["{SECRET}"]

[api]
tokens = ["{TOKEN}"]
""",
        encoding="utf-8",
    )
    return path


@contextmanager
def mailflow(*args: str, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``mailflow ARGS`` as a child process; killed at the end if still running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    log = (cwd / f"{args[0]}-{time.monotonic_ns()}.log").open("wb")
    proc = subprocess.Popen([MAILFLOW, *args], cwd=cwd, env=env, stdout=log, stderr=log)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


def _log_of(cwd: Path, command: str) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(cwd.glob(f"{command}-*.log")))


def _outbox(db: Database) -> list[OutboxMessage]:
    with db.read() as session:
        return list(session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _answers(url: str) -> bool:
    try:
        return _http("GET", url)[0] == 200
    except OSError:
        return False


class TestWorkerCrash:
    def test_worker_killed_mid_send_then_a_new_worker_delivers_the_same_message(
        self, db_url: str, tmp_path: Path, relay: tuple[RelayHandler, int]
    ) -> None:
        handler, port = relay
        config = _write_config(
            tmp_path,
            db_url,
            server="",
            smtp=f"""mode = "relay"
host = "127.0.0.1"
port = {port}
lease_seconds = {LEASE_SECONDS}
retry_base_seconds = 1
timeout_seconds = 60""",
        )
        system = build(load(config).settings)
        try:
            with TestClient(create_app(system), base_url="http://mailflow.test") as api:
                api.headers["Authorization"] = f"Bearer {TOKEN}"
                seller = factories.seller(api)
                factories.order(api, seller["id"])
            [queued] = _outbox(system.db)
            assert queued.status == "queued"

            # The relay takes the DATA and never answers: the message is in flight.
            handler.script = ["hang"]
            with mailflow("worker", "--config", str(config), cwd=tmp_path) as first:
                wait_for(lambda: handler.attempts == 1, timeout=20)
                [claimed] = _outbox(system.db)
                assert claimed.status == "queued"
                assert claimed.attempts == 1
                assert claimed.lease_until is not None
                first.send_signal(signal.SIGKILL)
                assert first.wait(10) == -signal.SIGKILL
            assert handler.received == []
            lease_until = _utc(claimed.lease_until)

            # The relay accepts again; a new worker takes the row once the lease has run out.
            assert handler.script == []
            with mailflow("worker", "--config", str(config), cwd=tmp_path) as second:
                wait_for(lambda: len(handler.received) == 1, timeout=20)
                assert datetime.now(UTC) >= lease_until
                wait_for(lambda: _outbox(system.db)[0].status == "sent", timeout=10)
                second.send_signal(signal.SIGTERM)
                assert second.wait(10) == 0, _log_of(tmp_path, "worker")

            [delivered] = handler.messages()
            [row] = _outbox(system.db)
            assert delivered["Message-ID"] == queued.message_id
            assert row.message_id == queued.message_id
            assert handler.received[0].raw == queued.body
            assert row.status == "sent"
            assert row.attempts == 2
            assert row.lease_until is None
            assert row.last_error is None
            assert handler.attempts == 2
        finally:
            system.close()


class TestServe:
    def test_serve_delivers_to_its_inbox_and_stops_on_sigterm(
        self, db_url: str, tmp_path: Path
    ) -> None:
        http_port, inbox_port = free_port(), free_port()
        config = _write_config(
            tmp_path,
            db_url,
            server=f'host = "127.0.0.1"\nport = {http_port}',
            smtp=f'mode = "embedded"\nembedded_port = {inbox_port}',
        )
        base = f"http://127.0.0.1:{http_port}"
        db = Database.from_url(db_url)
        try:
            with mailflow("serve", "--config", str(config), cwd=tmp_path) as proc:
                wait_for(lambda: proc.poll() is not None or _answers(f"{base}/healthz"), 30)
                assert proc.poll() is None, _log_of(tmp_path, "serve")

                # An order through the HTTP API reaches the embedded inbox.
                status, seller = _http(
                    "POST",
                    f"{base}/api/v1/sellers",
                    {"name": "Serve", "email": "serve@shop.example", "locale": "en"},
                )
                assert status == 201, seller
                status, order = _http(
                    "POST", f"{base}/api/v1/orders", factories.order_body(seller["id"])
                )
                assert status == 201, order

                def in_inbox() -> list[InboxMessage]:
                    with db.read() as session:
                        return list(session.execute(select(InboxMessage)).scalars())

                wait_for(lambda: len(in_inbox()) == 1, timeout=10)
                [row] = _outbox(db)
                [received] = in_inbox()
                assert received.message_id == row.message_id
                assert received.raw == row.body
                wait_for(lambda: _outbox(db)[0].status == "sent", timeout=10)

                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(10) == 0, _log_of(tmp_path, "serve")
                assert time.monotonic() - started < 5
            log = _log_of(tmp_path, "serve")
            assert "Traceback" not in log, log
            assert not _answers(f"{base}/healthz")
        finally:
            db.dispose()
