"""A fast SMTP sink for the benchmarks: aiosmtpd on 127.0.0.1, a free port, counts messages.

By default the sink runs in a **separate process** (``python bench/_sink.py``, driven over its
stdin and stdout). The aiosmtpd server is pure Python and costs about as much CPU per message
as the client side, so in the measured process it would compete for the GIL and the event
loop's core with the code under test, and a slower client would also slow the sink down (and
the other way round). In its own process it takes its own core, and the figures measure the
client. ``mode="thread"`` runs it in-process with ``aiosmtpd.controller.Controller`` instead,
to compare. A subprocess rather than ``multiprocessing``: spawn would re-import the bench's
main module (and all of mailflow) in the sink, and fork would copy a process with threads.

The sink keeps, per ``reset``: the number of messages accepted, the number of distinct
``Message-ID`` values among them, the bytes received, and its own CPU time, so that a bench can
check that every message arrived exactly once and tell whether the sink was the bottleneck.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP

HOST = "127.0.0.1"
_SERVER_NAME = "sink.bench"


@dataclass(frozen=True, slots=True)
class SinkStats:
    messages: int
    distinct_ids: int
    bytes: int
    cpu_seconds: float
    """CPU time of the sink (its whole process, or its thread in thread mode) since reset."""


class _Counter:
    """The aiosmtpd handler: accepts everything and counts it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.messages = 0
        self.bytes = 0
        self.ids: set[bytes] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data: bytes = envelope.content
        self.messages += 1
        self.bytes += len(data)
        self.ids.add(_message_id(data))
        return "250 OK"


def _message_id(data: bytes) -> bytes:
    head = data[: data.find(b"\r\n\r\n")]
    start = head.lower().find(b"message-id:")
    if start < 0:
        return b""
    end = head.find(b"\r\n", start)
    return head[start + 11 : end if end >= 0 else None].strip()


def _smtp(handler: _Counter) -> SMTP:
    return SMTP(handler, hostname=_SERVER_NAME, ident="bench-sink")


# -- the child process (``python bench/_sink.py``) -----------------------------------------


async def _child_serve() -> None:
    """Serve on a free port; print it; then answer ``stats`` / ``reset`` / ``stop`` on stdin."""
    loop = asyncio.get_running_loop()
    handler = _Counter()
    server = await loop.create_server(lambda: _smtp(handler), HOST, 0)
    done: asyncio.Future[None] = loop.create_future()
    cpu_mark = time.process_time()

    def reply(value: Any) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    def on_command() -> None:
        nonlocal cpu_mark
        command = sys.stdin.readline().strip()
        if command == "stats":
            cpu = time.process_time() - cpu_mark
            reply([handler.messages, len(handler.ids), handler.bytes, cpu])
        elif command == "reset":
            handler.reset()
            cpu_mark = time.process_time()
            reply(True)
        elif command in ("stop", ""):  # "" is end of file: the parent has gone
            loop.remove_reader(sys.stdin.fileno())
            if not done.done():
                done.set_result(None)

    loop.add_reader(sys.stdin.fileno(), on_command)
    reply(server.sockets[0].getsockname()[1])
    await done
    server.close()


# -- the parent's handle ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Sink:
    """``with Sink() as sink: sink.port; sink.reset(); ...; sink.stats()``."""

    def __init__(self, mode: str = "process") -> None:
        if mode not in ("process", "thread"):
            raise ValueError(f"sink mode must be 'process' or 'thread', not {mode!r}")
        self.mode = mode
        self.host = HOST
        self.port = 0
        self.pid: int | None = None
        self._process: Any = None
        self._controller: Any = None
        self._handler: _Counter | None = None
        self._thread_cpu_mark = 0.0
        self._lock = threading.Lock()

    # lifecycle

    def start(self) -> Sink:
        if self.mode == "process":
            self._process = subprocess.Popen(
                [sys.executable, __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            self.port = int(self._ask(None))
            self.pid = self._process.pid
        else:
            from aiosmtpd.controller import Controller

            self._handler = _Counter()
            self.port = _free_port()
            self._controller = Controller(
                self._handler,
                hostname=HOST,
                port=self.port,
                server_hostname=_SERVER_NAME,
                ident="bench-sink",
                ready_timeout=10,
            )
            self._controller.start()
            self._thread_cpu_mark = self._thread_cpu()
        return self

    def stop(self) -> None:
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.write("stop\n")
                self._process.stdin.close()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process.stdout.close()
            self._process = None
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # counting

    def reset(self) -> None:
        if self._process is not None:
            self._ask("reset")
        else:
            assert self._handler is not None
            self._call_in_sink(self._handler.reset)
            self._thread_cpu_mark = self._thread_cpu()

    def stats(self) -> SinkStats:
        if self._process is not None:
            messages, distinct, size, cpu = self._ask("stats")
            return SinkStats(messages, distinct, size, cpu)
        assert self._handler is not None
        h = self._handler
        snapshot = self._call_in_sink(lambda: (h.messages, len(h.ids), h.bytes))
        return SinkStats(*snapshot, self._thread_cpu() - self._thread_cpu_mark)

    def _ask(self, command: str | None) -> Any:
        """Send a command line to the sink process (None: just read) and parse its reply."""
        process = self._process
        with self._lock:
            if command is not None:
                process.stdin.write(command + "\n")
                process.stdin.flush()
            answer = process.stdout.readline()
        if not answer:
            raise RuntimeError(f"SMTP sink process exited (code {process.poll()})")
        return json.loads(answer)

    def _call_in_sink(self, fn: Any) -> Any:
        async def call() -> Any:
            return fn()

        loop = self._controller.loop
        return asyncio.run_coroutine_threadsafe(call(), loop).result(10)

    def _thread_cpu(self) -> float:
        return float(self._call_in_sink(time.thread_time))


if __name__ == "__main__":
    asyncio.run(_child_serve())
