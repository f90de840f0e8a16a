"""The inbound processor: runs the handlers of what the inbound server spooled.

The server answers ``250`` once a message is in the spool (``services.inbound.spool``) and
wakes the processor (``Intake.spooled``), which then handles it
(``services.inbound.process``: the bounce or reply handler, the row settled with its
verdict, the message out of the spool, in one transaction), normally within milliseconds.
It also looks at the spool every ``POLL_SECONDS`` anyway: messages another process spooled
and could not handle (it stopped), and messages put off after a failure. Several
processors, in several processes, share one spool.

It gives way to arriving mail: while the server keeps spooling (the last wake-up less than
``GIVE_WAY`` seconds ago) it waits, but it never lets a message wait more than
``MAX_DELAY`` seconds for it. A burst of bounces is thus kept at the speed of the SMTP
conversation, without the handlers' transactions taking the database's writer turns (on
SQLite, one writer for all processes) or the CPU from it, and handled right after; under a
steady stream the handlers still run at least every ``MAX_DELAY`` seconds.

``mailflow serve`` and ``mailflow inbound serve`` run it in a process of its own
(``inbound.processor_process``), as Postfix runs its queue manager beside its ``smtpd``; the
tests run it in theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from mailflow.services import inbound
from mailflow.services.context import ServiceContext
from mailflow.store import spool
from mailflow.supervisor import beat
from mailflow.telemetry import Telemetry

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
GIVE_WAY = 0.02
MAX_DELAY = 5.0


class Intake:
    """How the SMTP side wakes the processor: ``spooled`` once messages were spooled."""

    def __init__(self) -> None:
        self.woken = asyncio.Event()
        self.last_spooled = 0.0
        self.first_unhandled: float | None = None
        """When the oldest message spooled and not yet seen handled was spooled."""

    def spooled(self) -> None:
        now = time.monotonic()
        self.last_spooled = now
        if self.first_unhandled is None:
            self.first_unhandled = now
        self.woken.set()

    def give_way(self, now: float) -> bool:
        """Whether mail is arriving and no message has waited ``MAX_DELAY`` yet."""
        first = self.first_unhandled
        return first is not None and now - self.last_spooled < GIVE_WAY and now - first < MAX_DELAY


class Report(Protocol):
    """Where the processor's figures go."""

    def handled(self, outcomes: list[inbound.Outcome]) -> None: ...

    def waiting(self, count: int) -> None: ...


class CountHere:
    """The figures counted in this process's telemetry."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def handled(self, outcomes: list[inbound.Outcome]) -> None:
        for outcome in outcomes:
            verdict = outcome.verdict
            inbound.count(
                self.telemetry,
                outcome.kind,
                verdict.verdict,
                verdict.template,
                verdict.email_outcome,
            )

    def waiting(self, count: int) -> None:
        self.telemetry.inbound_spool_messages.set(count)


class Processor:
    def __init__(
        self,
        ctx: ServiceContext,
        intake: Intake,
        batch: int = 16,
        report: Report | None = None,
    ) -> None:
        self.ctx = ctx
        self.intake = intake
        self.batch = batch
        self.report: Report = report or CountHere(ctx.telemetry)

    async def run(self, stop: asyncio.Event) -> None:
        """Handle spooled messages until ``stop`` is set."""
        intake = self.intake
        intake.woken.set()  # what is in the spool already (a restart) is handled at once
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                if not intake.woken.is_set():
                    woken = asyncio.create_task(intake.woken.wait())
                    await asyncio.wait(
                        (woken, stopping), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED"
                    )
                    woken.cancel()
                intake.woken.clear()
                await self.drain(stop)
                beat()
        finally:
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopping

    async def drain(self, stop: asyncio.Event) -> None:
        """Handle what is due in the spool, a batch per transaction, giving way to arrivals."""
        intake = self.intake
        while not stop.is_set():
            if intake.give_way(time.monotonic()):
                await asyncio.sleep(GIVE_WAY)
                continue
            started = time.monotonic()
            processed = await asyncio.to_thread(inbound.process, self.ctx, self.batch)
            if processed.outcomes:
                self.report.handled(processed.outcomes)
            if not processed.taken:
                if intake.last_spooled < started:
                    intake.first_unhandled = None
                break
        self.report.waiting(await asyncio.to_thread(self._waiting))

    def _waiting(self) -> int:
        with self.ctx.db.read() as tx:
            return spool.count(tx)
