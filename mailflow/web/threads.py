"""How many threads run the app's blocking work (sync endpoints, database transactions).

Starlette runs each sync endpoint on AnyIO's thread pool, 40 threads by default. Under load
that many threads only take turns at the interpreter lock: with 16 clients the server spent
about 3 ms more CPU per order than with one. ``server.threads`` bounds the pool instead;
requests beyond it wait in the event loop, where waiting costs nothing.
"""

from __future__ import annotations

import asyncio

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send


class ThreadLimit:
    """ASGI middleware: sets the running loop's thread pool to ``threads`` (once a loop)."""

    def __init__(self, app: ASGIApp, threads: int) -> None:
        self.app = app
        self.threads = threads
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            anyio.to_thread.current_default_thread_limiter().total_tokens = self.threads
            self._loop = loop
        await self.app(scope, receive, send)
