"""Where the web edges run the renders of templates an admin wrote: previews, and the saves,
publishes and test sends that render a version to check it.

Such a template may spend the sandbox's whole render budget (``mail.sandbox``: 2 s a part)
holding the interpreter. On the app's thread pool, a few of them at once took every one of
the ``server.threads`` and the interpreter with them: ``/healthz``, clicks and the API queued
behind them (eight heavy previews made a health check wait 4 s). They run here instead, on a
limiter of their own, ``RENDER_SLOTS`` at a time: the others wait in the event loop, where
waiting costs nothing, and no render ever holds one of the threads the other requests run on.
While one renders, the sandbox lets other threads take the interpreter at short intervals
(``mail.sandbox``), so a request beside it waits milliseconds, not seconds.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

RENDER_SLOTS = 1
"""Admin renders running at once. One is enough: they are CPU-bound Python, which runs one
thread at a time, so a second slot would only share the interpreter three ways instead of two."""

T = TypeVar("T")

_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _limiter() -> anyio.CapacityLimiter:
    """The running loop's render limiter (a limiter belongs to the loop it was made on)."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(RENDER_SLOTS)
    return limiter


async def run_render(work: Callable[[], T]) -> T:
    """``work()`` (a call that renders an admin's template) on a thread, once a render slot
    is free."""
    return await anyio.to_thread.run_sync(work, limiter=_limiter())
