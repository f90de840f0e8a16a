"""Long-running processes: ``serve`` (HTTP, worker, inbox) and ``worker``; clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from mailflow.bootstrap import System
from mailflow.mail.inbox import InboxServer
from mailflow.services import sweeps
from mailflow.store import wakeup
from mailflow.store.database import WEBHOOKS_CHANNEL
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


def inbox_server(system: System) -> InboxServer:
    return InboxServer(system.db, system.clock, "127.0.0.1", system.settings.smtp.embedded_port)


async def sweep_forever(system: System, stop: asyncio.Event) -> None:
    """Deadlines and reminders, every ``policy.sweep_every_seconds``, until ``stop``."""
    every = system.settings.policy.sweep_every_seconds
    while not stop.is_set():
        try:
            report = await asyncio.to_thread(sweeps.sweep, system.services)
            if report.expired or report.reminded or report.tiers_changed:
                log.info(
                    "sweep: %s expired, %s reminded, %s tier changes",
                    report.expired,
                    report.reminded,
                    report.tiers_changed,
                )
        except Exception:
            # A failed sweep (database briefly away) is retried at the next tick.
            log.exception("sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def webhooks_forever(system: System, stop: asyncio.Event) -> None:
    """Webhook deliveries to the marketplace, until ``stop`` (docs/webhooks.md); on
    PostgreSQL with its own LISTEN, woken by deliveries other processes queue."""
    worker = system.webhook_worker()
    jobs = [worker.run(stop)]
    dsn = system.db.listen_dsn()
    if dsn is not None:
        jobs.append(wakeup.listen(dsn, worker.wake, stop, channel=WEBHOOKS_CHANNEL))
    await asyncio.gather(*jobs)


def _tasks(system: System, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """The delivery worker, the sweeper, the webhook worker and, on PostgreSQL, the LISTEN
    wake-up."""
    worker = system.delivery_worker()
    tasks = [
        asyncio.create_task(worker.run(stop)),
        asyncio.create_task(sweep_forever(system, stop)),
        asyncio.create_task(webhooks_forever(system, stop)),
    ]
    dsn = system.db.listen_dsn()
    if dsn is not None:
        tasks.append(asyncio.create_task(wakeup.listen(dsn, worker.wake, stop)))
    return tasks


async def serve(
    system: System, *, with_inbox: bool, on_ready: Callable[[], None] | None = None
) -> None:
    settings = system.settings
    stop = asyncio.Event()
    inbox = inbox_server(system) if with_inbox else None
    if inbox is not None:
        await inbox.start()
        log.info("embedded inbox listening on 127.0.0.1:%s", settings.smtp.embedded_port)
    tasks = _tasks(system, stop)
    # http "auto": httptools when installed (uvicorn[standard]), else h11. The loop is the
    # one ``run`` made, uvloop when installed.
    config = uvicorn.Config(
        create_app(system),
        host=settings.server.host,
        port=settings.server.port,
        http="auto",
        lifespan="off",
        log_level="info",
        access_log=False,
    )
    server = _Server(config)

    def _shutdown() -> None:
        log.info("stopping")
        server.should_exit = True
        stop.set()

    _on_signals(asyncio.get_running_loop(), _shutdown)
    if on_ready is not None:
        asyncio.get_running_loop().call_later(0.5, on_ready)
    try:
        await server.serve()
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        if inbox is not None:
            await inbox.stop()
    log.info("stopped")


async def work(system: System) -> None:
    stop = asyncio.Event()
    _on_signals(asyncio.get_running_loop(), stop.set)
    log.info("worker delivering to %s:%s", *system.settings.smtp_target)
    await asyncio.gather(*_tasks(system, stop))
    log.info("stopped")


async def inbox_only(system: System) -> None:
    stop = asyncio.Event()
    _on_signals(asyncio.get_running_loop(), stop.set)
    inbox = inbox_server(system)
    await inbox.start()
    log.info("embedded inbox listening on 127.0.0.1:%s", system.settings.smtp.embedded_port)
    await stop.wait()
    await inbox.stop()


def serve_processes(system: System, workers: int, config_path: str | None) -> None:
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
        log_level="info",
        access_log=False,
    )
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def background() -> None:
        await asyncio.gather(*_tasks(system, stop))

    thread = threading.Thread(target=loop.run_until_complete, args=(background(),), daemon=True)
    thread.start()
    sock = config.bind_socket()
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)
        log.info("stopped")
