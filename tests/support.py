"""Test helpers: a movable clock, an SMTP relay on loopback, a live uvicorn, mail parsing,
``mailflow serve`` as a process."""

from __future__ import annotations

import asyncio
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from aiosmtpd.controller import Controller

from mailflow.bootstrap import System


class MovableClock:
    """A clock that stands still until moved."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]


@dataclass
class RelayHandler:
    """Accepts mail, or follows ``script``: a list of replies/behaviours for the next DATAs.

    Each script entry is a reply line such as ``"451 try later"`` / ``"550 no such user"``,
    or ``"drop"`` to close the connection before answering, or ``"hang"`` to never answer.
    """

    received: list[Received] = field(default_factory=list)
    script: list[str] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.attempts += 1
            step = self.script.pop(0) if self.script else "250 OK"
        if step == "drop":
            server.transport.close()
            return "421 closing"
        if step == "hang":
            await asyncio.sleep(3600)
        if step.startswith("250"):
            with self.lock:
                self.received.append(
                    Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
                )
        return step

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [r.message for r in self.received]


Handler = TypeVar("Handler")


@contextmanager
def smtp_relay(handler: Handler, **options: Any) -> Iterator[tuple[Handler, int]]:
    """An aiosmtpd server on 127.0.0.1 with ``handler``, and its port, while in the block;
    ``options`` go to aiosmtpd's Controller (``ssl_context=`` for implicit TLS,
    ``tls_context=`` and ``require_starttls=`` for STARTTLS)."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10, **options)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def deliver(system: System, **overrides: Any) -> int:
    """Run a delivery worker until nothing is due; returns how many it sent."""
    worker = system.delivery_worker(poll_seconds=0.05, **overrides)
    asyncio.run(worker.run(until_idle=True))
    return worker.sent_count


@contextmanager
def live_server(system: System) -> Iterator[str]:
    """The app on a real uvicorn, in a thread, on a free loopback port."""
    from mailflow.web.app import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(system), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


LINK = re.compile(r"https?://[^\s\"<>]+/s/[A-Za-z0-9_.\-]+")


def links_in(message: EmailMessage) -> list[str]:
    """The action links of a message's text part, in order (accept, refuse, view)."""
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return LINK.findall(text)


def text_of(message: EmailMessage) -> str:
    """The decoded text part, with line ends as a mail client shows them."""
    content: str = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return content.replace("\r\n", "\n")


def html_of(message: EmailMessage) -> str:
    content: str = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return content.replace("\r\n", "\n")


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def context_options(**overrides: Any) -> dict[str, Any]:
    """A desktop browser in French, 1280 pixels wide, unless overridden (browser tests)."""
    return {"viewport": {"width": 1280, "height": 900}, "locale": "fr-FR", **overrides}


# axe-core, the accessibility checker the browser tests run in each page. It comes from npm
# (package.json at the repository's root): `npm install` (or `npm ci`) puts it here.
AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
AXE_FAILS_ON = ("serious", "critical")


def axe_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations in the page as it is now, one line each
    (rule, impact, the elements' selectors). Fails the test, never skips it, without axe-core.

    axe is added as a script tag, which the pages' CSP (script-src 'self') refuses: open the
    page in a context with ``bypass_csp=True`` (the other browser tests keep checking the CSP)."""
    import pytest

    if not AXE.is_file():
        pytest.fail(
            f"axe-core is missing ({AXE} not found): run `npm install` at the repository's root",
            pytrace=False,
        )
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    # The frames hold email HTML (previews, messages), not the page's own markup.
    results = page.evaluate(
        "() => axe.run(document, { iframes: false, resultTypes: ['violations'] })"
    )
    return [
        f"{v['id']} ({v['impact']}) on {page.url}: {v['help']}: "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"])
        for v in results["violations"]
        if v["impact"] in AXE_FAILS_ON
    ]


# ``mailflow serve`` as its own process --------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
LISTENING = "HTTP listening on"


def serve_config(tmp_path: Path, port: int, secret: str, tokens: str) -> Path:
    """A TOML file for ``mailflow serve`` on ``port``: a SQLite file and the embedded SMTP
    server on free ports under ``tmp_path``, ``tokens`` as written (a TOML list)."""
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
secret_keys = ["{secret}"]

[api]
tokens = {tokens}
""",
        encoding="utf-8",
    )
    return path


def serve_until_listening(config: Path, cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``mailflow serve --config CONFIG`` started, and its stderr up to its HTTP listening
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
        stop_process(proc)
        raise
    finally:
        selector.close()
    return proc, err.decode()


def stop_process(proc: subprocess.Popen[bytes]) -> int:
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
