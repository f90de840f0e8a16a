"""The inbound processor: runs the handlers of what the inbound server spooled.

The server answers ``250`` once a message is in the spool (``services.inbound.spool``); the
processor then handles it (``services.inbound.process``: bounce or reply handler, its row
settled with the verdict, the message out of the spool, in one transaction), normally within
milliseconds. Like Postfix's queue manager behind its ``smtpd``, it gives way to the SMTP
side: while messages are arriving (one waits to be spooled, or one was spooled less than
``GIVE_WAY`` seconds ago) it waits, but it never lets a spooled message wait more than
``MAX_DELAY`` seconds for it. A burst of bounces is thus taken at the speed of the SMTP
conversation and handled right after, and under a steady stream the handlers still run at
least every ``MAX_DELAY`` seconds.

It wakes when its server spools a message, and looks at the spool every ``POLL_SECONDS``
anyway: messages another process spooled and could not handle (it stopped), and messages
put off after a failure. Several processors, in several processes, share one spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from mailflow.services import inbound
from mailflow.services.context import ServiceContext
from mailflow.store import spool
from mailflow.supervisor import beat

log = logging.getLogger(__name__)

GIVE_WAY = 0.02
MAX_DELAY = 1.0
POLL_SECONDS = 1.0


class Intake:
    """What the SMTP side tells the processor: messages waiting to be spooled, and when it
    last spooled some (all on the event loop's thread)."""

    def __init__(self) -> None:
        self.waiting = 0
        self.last_spooled = 0.0
        self.first_unhandled: float | None = None
        """When the oldest message spooled here and not yet seen handled was spooled."""
        self.woken = asyncio.Event()

    def spooled(self) -> None:
        now = time.monotonic()
        self.last_spooled = now
        if self.first_unhandled is None:
            self.first_unhandled = now
        self.woken.set()

    def arriving(self, now: float) -> bool:
        return self.waiting > 0 or now - self.last_spooled < GIVE_WAY


class Processor:
    def __init__(self, ctx: ServiceContext, intake: Intake, batch: int = 16) -> None:
        self.ctx = ctx
        self.intake = intake
        self.batch = batch

    async def run(self, stop: asyncio.Event) -> None:
        """Handle spooled messages until ``stop`` is set."""
        intake = self.intake
        intake.woken.set()  # what is in the spool already (a restart) is handled at once
        while not stop.is_set():
            if not intake.woken.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(intake.woken.wait(), POLL_SECONDS)
            intake.woken.clear()
            await self.drain(stop)
            beat()

    async def drain(self, stop: asyncio.Event) -> None:
        """Handle what is due in the spool, a batch at a time, giving way to arrivals."""
        intake = self.intake
        while not stop.is_set():
            now = time.monotonic()
            first = intake.first_unhandled
            if intake.arriving(now) and first is not None and now - first < MAX_DELAY:
                await asyncio.sleep(GIVE_WAY)
                continue
            started = time.monotonic()
            taken = await asyncio.to_thread(inbound.process, self.ctx, self.batch)
            if taken:
                continue
            if intake.last_spooled < started:
                intake.first_unhandled = None
            await asyncio.to_thread(self._measure)
            return

    def _measure(self) -> None:
        with self.ctx.db.read() as tx:
            self.ctx.telemetry.inbound_spool_messages.set(spool.count(tx))
