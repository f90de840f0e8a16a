"""A fast SMTP sink for the benchmarks: aiosmtpd on 127.0.0.1, a free port, counts messages.

By default the sink runs in a **separate process** (``multiprocessing`` with ``spawn``). The
aiosmtpd server is pure Python and costs about as much CPU per message as the client side, so
in the measured process it would compete for the GIL and the event loop's core with the code
under test, and a slower client would also slow the sink down (and the other way round). In
its own process it takes its own core, and the figures measure the client. ``mode="thread"``
runs it in-process with ``aiosmtpd.controller.Controller`` instead, to compare.

The sink keeps, per ``reset``: the number of messages accepted, the number of distinct
``Message-ID`` values among them, the bytes received, and its own CPU time, so that a bench can
check that every message arrived exactly once and tell whether the sink was the bottleneck.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
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


# -- the child process --------------------------------------------------------------------


def _child_main(conn: Any) -> None:
    asyncio.run(_child_serve(conn))


async def _child_serve(conn: Any) -> None:
    loop = asyncio.get_running_loop()
    handler = _Counter()
    server = await loop.create_server(lambda: _smtp(handler), HOST, 0)
    port = server.sockets[0].getsockname()[1]
    done: asyncio.Future[None] = loop.create_future()
    cpu_mark = time.process_time()

    def on_command() -> None:
        nonlocal cpu_mark
        try:
            command = conn.recv()
        except (EOFError, OSError):
            command = "stop"
        if command == "stats":
            cpu = time.process_time() - cpu_mark
            conn.send((handler.messages, len(handler.ids), handler.bytes, cpu))
        elif command == "reset":
            handler.reset()
            cpu_mark = time.process_time()
            conn.send(True)
        elif command == "stop":
            loop.remove_reader(conn.fileno())
            if not done.done():
                done.set_result(None)

    loop.add_reader(conn.fileno(), on_command)
    conn.send(port)
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
        self._conn: Any = None
        self._controller: Any = None
        self._handler: _Counter | None = None
        self._thread_cpu_mark = 0.0
        self._lock = threading.Lock()

    # lifecycle

    def start(self) -> Sink:
        if self.mode == "process":
            ctx = multiprocessing.get_context("spawn")
            parent, child = ctx.Pipe()
            self._process = ctx.Process(target=_child_main, args=(child,), daemon=True)
            self._process.start()
            child.close()
            if not parent.poll(30):
                self._process.kill()
                raise RuntimeError("SMTP sink process did not start")
            self.port = parent.recv()
            self._conn = parent
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
            try:
                self._conn.send("stop")
            except OSError:
                pass
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._conn.close()
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
            with self._lock:
                self._conn.send("reset")
                self._conn.recv()
        else:
            assert self._handler is not None
            self._call_in_sink(self._handler.reset)
            self._thread_cpu_mark = self._thread_cpu()

    def stats(self) -> SinkStats:
        if self._process is not None:
            with self._lock:
                self._conn.send("stats")
                messages, distinct, size, cpu = self._conn.recv()
            return SinkStats(messages, distinct, size, cpu)
        assert self._handler is not None
        h = self._handler
        snapshot = self._call_in_sink(lambda: (h.messages, len(h.ids), h.bytes))
        return SinkStats(*snapshot, self._thread_cpu() - self._thread_cpu_mark)

    def _call_in_sink(self, fn: Any) -> Any:
        async def call() -> Any:
            return fn()

        loop = self._controller.loop
        return asyncio.run_coroutine_threadsafe(call(), loop).result(10)

    def _thread_cpu(self) -> float:
        return float(self._call_in_sink(time.thread_time))
