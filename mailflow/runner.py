"""Long-running processes: ``serve`` (HTTP, worker, inbox) and ``worker``; clean stop on SIGTERM.

Every long-running task runs under the system's supervisor (``mailflow.supervisor``): a task
that fails is logged with its traceback, restarted with backoff and counted; the others go on.
A new task is one more ``supervisor.start(name, coroutine_function, stop)`` in ``_tasks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import uvicorn

from mailflow import listen
from mailflow.bootstrap import System
from mailflow.config import Settings
from mailflow.inbound.processor_process import ProcessorProcess
from mailflow.inbound.server import InboundServer
from mailflow.mail.inbox import InboxServer
from mailflow.services import sweeps
from mailflow.store import wakeup
from mailflow.store.database import WEBHOOKS_CHANNEL
from mailflow.supervisor import beat
from mailflow.web.app import create_app

log = logging.getLogger("mailflow")

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop uvicorn's ``loop="auto"`` would pick: uvloop's when it is installed (it
    comes with ``uvicorn[standard]``), else asyncio's (``None``)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on the loop of ``loop_factory``. ``serve`` runs uvicorn inside a loop of its
    own (beside the worker and the inbox), where uvicorn's ``loop`` setting does not apply."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


class _Server(uvicorn.Server):
    """uvicorn, with signals left to the process so the worker and inbox stop too."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _on_signals(loop: asyncio.AbstractEventLoop, handler: Callable[[], None]) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handler)


def inbox_server(system: System, sock: socket.socket | None = None) -> InboxServer:
    smtp, inbound = system.settings.smtp, system.settings.inbound
    back = (inbound.domain, (inbound.host, inbound.port)) if inbound.enabled else None
    return InboxServer(
        system.db,
        system.clock,
        "127.0.0.1",
        smtp.embedded_port,
        sock,
        bounce_pattern=smtp.embedded_bounce_pattern,
        return_paths=back,
    )


@dataclass
class Listeners:
    """The sockets ``serve`` listens on, bound before the system is built (``bind``)."""

    http: socket.socket
    inbox: socket.socket | None = None
    inbound: socket.socket | None = None

    def close(self) -> None:
        for sock in (self.http, self.inbox, self.inbound):
            if sock is not None:
                sock.close()


def bind(settings: Settings, *, with_inbox: bool, with_inbound: bool = False) -> Listeners:
    """Bind the HTTP port and, with the embedded inbox and the inbound server, theirs; raises
    ``CannotListen`` naming the setting to change (nothing stays bound then)."""
    listeners = Listeners(
        listen.bind(settings.server.host, settings.server.port, "server.port (or --port)")
    )
    try:
        if with_inbox:
            listeners.inbox = listen.bind(
                "127.0.0.1", settings.smtp.embedded_port, "smtp.embedded_port"
            )
        if with_inbound:
            inbound = settings.inbound
            listeners.inbound = listen.bind(inbound.host, inbound.port, "inbound.port")
    except listen.CannotListen:
        listeners.close()
        raise
    return listeners


async def sweep_forever(system: System, stop: asyncio.Event) -> None:
    """Deadlines and reminders, every ``policy.sweep_every_seconds``, until ``stop``. A failed
    sweep (the database briefly away) fails the task: the supervisor restarts it."""
    every = system.settings.policy.sweep_every_seconds
    while not stop.is_set():
        report = await asyncio.to_thread(sweeps.sweep, system.services)
        beat()
        if report.expired or report.reminded or report.tiers_changed:
            log.info(
                "sweep: %s expired, %s reminded, %s tier changes",
                report.expired,
                report.reminded,
                report.tiers_changed,
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


INBOX_CHECK_SECONDS = 5.0


class _Listening(Protocol):
    port: int

    async def start(self) -> None: ...

    def serving(self) -> bool: ...


async def keep_listening(server: _Listening, stop: asyncio.Event) -> None:
    """An SMTP server (the embedded inbox, the inbound server), listening until ``stop``
    (started again here if it is not serving)."""
    while not stop.is_set():
        if not server.serving():
            await server.start()
            log.info("%s listening again on port %s", type(server).__name__, server.port)
        beat()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), INBOX_CHECK_SECONDS)


def _tasks(
    system: System,
    stop: asyncio.Event,
    *,
    inbox: InboxServer | None = None,
    inbound: InboundServer | None = None,
) -> list[asyncio.Task[None]]:
    """The supervised tasks: the delivery worker (its claim loop, senders and flusher), the
    sweeper, the webhook worker, on PostgreSQL the LISTEN wake-ups (of the outbox and of the
    webhooks), and the embedded inbox and the inbound server when given."""
    supervisor = system.supervisor
    worker = system.delivery_worker()
    hooks = system.webhook_worker()
    sweep_stale = 3 * system.settings.policy.sweep_every_seconds + 60
    sweep = lambda: sweep_forever(system, stop)  # noqa: E731
    tasks = [
        asyncio.create_task(worker.run(stop)),  # supervises its claim loop, senders, flusher
        supervisor.start("sweeper", sweep, stop, stale_after=sweep_stale),
        supervisor.start("webhooks", lambda: hooks.run(stop), stop),
    ]
    dsn = system.db.listen_dsn()
    if dsn is not None:
        woken = lambda: wakeup.listen(dsn, worker.wake, stop)  # noqa: E731
        tasks.append(supervisor.start("wakeup", woken, stop, stale_after=wakeup.STALE_AFTER))
        hooks_woken = lambda: wakeup.listen(dsn, hooks.wake, stop, channel=WEBHOOKS_CHANNEL)  # noqa: E731
        tasks.append(
            supervisor.start("webhooks.wakeup", hooks_woken, stop, stale_after=wakeup.STALE_AFTER)
        )
    if inbox is not None:
        tasks.append(supervisor.start("inbox", lambda: keep_listening(inbox, stop), stop))
    if inbound is not None:
        tasks += _inbound_tasks(system, inbound, stop)
    return tasks


def _inbound_tasks(
    system: System, inbound: InboundServer, stop: asyncio.Event
) -> list[asyncio.Task[None]]:
    """The inbound server, and the processor running the handlers of what it spools (in a
    process of its own)."""
    supervisor = system.supervisor
    processor = ProcessorProcess(system.settings, inbound.intake, system.telemetry)
    return [
        supervisor.start("inbound", lambda: keep_listening(inbound, stop), stop),
        supervisor.start("inbound.processor", lambda: processor.run(stop), stop),
    ]


async def run_tasks(system: System, stop: asyncio.Event) -> None:
    """Every supervised task of ``worker`` until ``stop`` (also what tests run in-process)."""
    await asyncio.gather(*_tasks(system, stop))


async def serve(
    system: System,
    *,
    with_inbox: bool,
    on_ready: Callable[[], None] | None = None,
    listeners: Listeners | None = None,
) -> None:
    settings = system.settings
    if listeners is None:
        listeners = bind(settings, with_inbox=with_inbox, with_inbound=settings.inbound.enabled)
    stop = asyncio.Event()
    inbox = inbox_server(system, listeners.inbox) if with_inbox else None
    if inbox is not None:
        await inbox.start()  # a port taken is an error at once, not a task restarting
        log.info("embedded inbox listening on 127.0.0.1:%s", settings.smtp.embedded_port)
    inbound = None
    if settings.inbound.enabled:
        inbound = InboundServer.of(system, sock=listeners.inbound)
        await inbound.start()  # before the tasks: a port taken is an error at once
        log.info("inbound SMTP listening on %s:%s", inbound.host, inbound.port)
    tasks = _tasks(system, stop, inbox=inbox, inbound=inbound)
    # http "auto": httptools when installed (uvicorn[standard]), else h11. The loop is the
    # one ``run`` made, uvloop when installed.
    config = uvicorn.Config(
        create_app(system),
        host=settings.server.host,
        port=settings.server.port,
        http="auto",
        lifespan="off",
        log_level=settings.server.log_level,
        # mailflow's own handler (``logs.configure``: text or JSON) and access line
        # (``web.access``) stand in for uvicorn's.
        log_config=None,
        access_log=False,
    )
    server = _Server(config)

    def _shutdown() -> None:
        log.info("stopping")
        server.should_exit = True
        stop.set()

    _on_signals(asyncio.get_running_loop(), _shutdown)
    host, port = listeners.http.getsockname()[:2]
    log.info("HTTP listening on %s:%s (Ctrl+C to stop)", host, port)
    if on_ready is not None:
        asyncio.get_running_loop().call_later(0.5, on_ready)
    try:
        await server.serve(sockets=[listeners.http])
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for listening in (inbox, inbound):
            if listening is not None:
                await listening.stop()
    log.info("stopped")


async def work(system: System) -> None:
    stop = asyncio.Event()
    _on_signals(asyncio.get_running_loop(), stop.set)
    log.info("worker delivering to %s:%s", *system.settings.smtp_target)
    await run_tasks(system, stop)
    log.info("stopped")


async def inbox_only(system: System, sock: socket.socket | None = None) -> None:
    stop = asyncio.Event()
    _on_signals(asyncio.get_running_loop(), stop.set)
    inbox = inbox_server(system, sock)
    await inbox.start()
    port = listen.port_of(sock) if sock is not None else system.settings.smtp.embedded_port
    log.info("embedded inbox listening on 127.0.0.1:%s", port)
    await system.supervisor.start("inbox", lambda: keep_listening(inbox, stop), stop)
    await inbox.stop()


async def inbound_only(system: System, host: str | None, port: int | None) -> None:
    """``mailflow inbound serve``: the inbound server alone, supervised, until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    _on_signals(asyncio.get_running_loop(), stop.set)
    server = InboundServer.of(system, host, port)
    await server.start()
    log.info("inbound SMTP listening on %s:%s", server.host, server.port)
    await asyncio.gather(*_inbound_tasks(system, server, stop))
    await server.stop()


def serve_processes(
    system: System, workers: int, config_path: str | None, listeners: Listeners
) -> None:
    """HTTP in ``workers`` processes (uvicorn's supervisor); delivery, sweeps and the LISTEN
    wake-up in a thread of this one. The embedded inbox is not run: start
    ``mailflow inbox serve`` beside it."""
    from uvicorn.supervisors import Multiprocess

    from mailflow.web.asgi import CONFIG_ENV

    if config_path is not None:
        os.environ[CONFIG_ENV] = str(Path(config_path).resolve())
    settings = system.settings
    config = uvicorn.Config(
        "mailflow.web.asgi:create_app_from_env",
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=workers,
        # Each HTTP process runs uvicorn's own loop: "auto" is uvloop and httptools when
        # installed (uvicorn[standard]), else asyncio and h11.
        loop="auto",
        http="auto",
        # A child builds its own system on start; give it time on a busy machine.
        timeout_worker_healthcheck=30,
        lifespan="off",
        log_level=settings.server.log_level,
        log_config=None,
        access_log=False,
    )
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    thread = threading.Thread(
        target=loop.run_until_complete, args=(run_tasks(system, stop),), daemon=True
    )
    thread.start()
    try:
        Multiprocess(config, sockets=[listeners.http]).run()
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)
        log.info("stopped")
