"""A real HTTP receiver on loopback for the webhook tests: records every request and answers
from a script (a status per request, ``"hang"`` to stall, then 200 once the script is spent)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None
    """What the receiver answered (None: it stalled)."""


@dataclass
class Receiver:
    port: int = 0
    script: list[int | str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    hang_seconds: float = 3.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def delivered(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.status is not None and 200 <= r.status < 300]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with receiver.lock:
                step = receiver.script.pop(0) if receiver.script else 200
            status = None if step == "hang" else int(step)
            with receiver.lock:
                receiver.requests.append(
                    Request(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body, status
                    )
                )
            if status is None:
                time.sleep(receiver.hang_seconds)
                self.close_connection = True
                return
            answer = b'{"ok": true}' if status < 300 else b"x" * 5000
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiver(**options: Any) -> Iterator[Receiver]:
    recorder = Receiver(**options)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    server.daemon_threads = True
    recorder.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
