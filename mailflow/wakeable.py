"""What the delivery worker and the webhook worker share: being woken from another thread.

A commit that queues work (an email, a webhook delivery) calls ``wake`` from whatever thread
committed; the worker's loop then looks at once instead of at its next poll.
"""

from __future__ import annotations

import asyncio
import contextlib


class Wakeable:
    """A worker with an event that ``wake`` sets, thread-safely, on the worker's own loop."""

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    def wake(self) -> None:
        """Thread-safe: work was queued; look now rather than at the next poll."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    def _arm(self) -> asyncio.Event:
        """Called at the start of ``run``, on the loop that will be woken: the event."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        return self._wake
