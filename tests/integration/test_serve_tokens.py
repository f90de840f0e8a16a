"""``mailflow serve`` with no API token warns on stderr before it starts; with one, it does not.

``mailflow serve`` runs as its own process on a TOML file written here, on free ports; its
stderr is read until uvicorn says it is listening, then the process is stopped with SIGTERM.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "serve-tokens-secret-" + "s" * 32
TOKEN = "serve-tokens-token-" + "t" * 24
WARNING = "warning: [api] tokens is empty: every /api/ request will be refused with 401"
LISTENING = "HTTP listening on"


def _config(tmp_path: Path, port: int, tokens: str) -> Path:
    path = tmp_path / "mailflow.toml"
    path.write_text(
        f"""
[server]
port = {port}
base_url = "http://127.0.0.1:{port}"
data_dir = "{tmp_path / "data"}"

[database]
url = "sqlite:///{tmp_path / "mailflow.db"}"

[smtp]
mode = "embedded"
embedded_port = {free_port()}

[security]
secret_keys = ["{SECRET}"]

[api]
tokens = {tokens}
""",
        encoding="utf-8",
    )
    return path


def _serve_until_listening(config: Path, cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``mailflow serve --config CONFIG`` started, and its stderr up to uvicorn's listening
    line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailflow", "serve", "--config", str(config)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    selector = selectors.DefaultSelector()
    selector.register(proc.stderr, selectors.EVENT_READ)
    err = b""
    deadline = time.monotonic() + 60
    try:
        while LISTENING.encode() not in err:
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                raise AssertionError(f"serve did not start; its stderr: {err.decode()!r}")
            if selector.select(min(left, 0.5)):
                err += proc.stderr.read() or b""
    except BaseException:
        _stop(proc)
        raise
    finally:
        selector.close()
    return proc, err.decode()


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then its exit status (killed if it does not stop in time)."""
    try:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def _api_status(port: int) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/sales/1")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("tokens", ["[]", f'["{TOKEN}"]'], ids=["no-token", "a-token"])
def test_serve_warns_on_stderr_when_the_api_has_no_token(tmp_path: Path, tokens: str) -> None:
    port = free_port()
    proc, err = _serve_until_listening(_config(tmp_path, port, tokens), tmp_path)
    try:
        status = _api_status(port)
    finally:
        assert _stop(proc) == 0
    if tokens == "[]":
        assert WARNING in err
        assert err.index(WARNING) < err.index(LISTENING), "the warning comes before the start"
        assert status == 401
    else:
        assert "warning" not in err.lower()
        assert "tokens" not in err
        assert status == 404  # authorised: no sale 1
