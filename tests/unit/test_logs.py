"""``[server] log_format`` and ``log_level``: every line as text or as one JSON object, with
the fields a record carries (the access line's request id, status, …)."""

from __future__ import annotations

import json
import logging

import pytest

from mailflow import logs
from mailflow.config import ConfigError, Settings, load


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield None
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _line(log_format: str, capsys: pytest.CaptureFixture[str], level: str = "info") -> str:
    logs.configure(log_format, level)
    logging.getLogger("mailflow.access").info(
        '127.0.0.1 "GET /healthz" 200 1.0ms', extra={"request_id": "r-1", "status": 200}
    )
    return capsys.readouterr().err


def test_json_is_one_object_a_line_with_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    entry = json.loads(_line("json", capsys))
    assert entry["message"] == '127.0.0.1 "GET /healthz" 200 1.0ms'
    assert entry["request_id"] == "r-1" and entry["status"] == 200
    assert entry["level"] == "info" and entry["logger"] == "mailflow.access"


def test_text_appends_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    line = _line("text", capsys)
    assert 'INFO mailflow.access: 127.0.0.1 "GET /healthz" 200 1.0ms' in line
    assert line.rstrip().endswith("request_id=r-1 status=200")


def test_the_level_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert _line("text", capsys, "warning") == ""


def test_the_settings_are_checked() -> None:
    server = Settings.model_validate({"server": {"log_format": "json", "log_level": "debug"}})
    assert (server.server.log_format, server.server.log_level) == ("json", "debug")
    for bad in ({"log_format": "xml"}, {"log_level": "loud"}, {"max_body_bytes": 10}):
        env = {f"MAILFLOW_SERVER__{k.upper()}": str(v) for k, v in bad.items()}
        with pytest.raises(ConfigError, match="server"):
            load(None, env, create_dev_secrets=False)


def test_links_follow_the_address_served_unless_base_url_is_set() -> None:
    env = {"MAILFLOW_SERVER__PORT": "8101", "MAILFLOW_SECURITY__SECRET_KEYS": f'["{"k" * 40}"]'}
    follows = load(None, env, create_dev_secrets=False)
    assert follows.settings.server.base_url == "http://127.0.0.1:8101"
    moved = follows.settings.server.listening_on("0.0.0.0", 9000)
    assert moved.base_url == "http://127.0.0.1:9000" and moved.host == "0.0.0.0"
    fixed = Settings.model_validate({"server": {"base_url": "https://mail.example.com/"}})
    assert fixed.server.listening_on(None, 9000).base_url == "https://mail.example.com"
