"""``mailflow serve`` with no API token warns on stderr before it starts; with one, it does not.

``mailflow serve`` runs as its own process (``tests.support.serve_until_listening``) on free
ports; its stderr is read until uvicorn says it is listening, then it is stopped with SIGTERM.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support import LISTENING, free_port, serve_config, serve_until_listening, stop_process

SECRET = "serve-tokens-secret-" + "s" * 32
TOKEN = "serve-tokens-token-" + "t" * 24
WARNING = "warning: [api] tokens is empty: every /api/ request will be refused with 401"


def _config(tmp_path: Path, port: int, tokens: str) -> Path:
    return serve_config(tmp_path, port, SECRET, tokens)


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
    proc, err = serve_until_listening(_config(tmp_path, port, tokens), tmp_path)
    try:
        status = _api_status(port)
    finally:
        assert stop_process(proc) == 0
    if tokens == "[]":
        assert WARNING in err
        assert err.index(WARNING) < err.index(LISTENING), "the warning comes before the start"
        assert status == 401
    else:
        assert "warning" not in err.lower()
        assert "tokens" not in err
        assert status == 404  # authorised: no sale 1
