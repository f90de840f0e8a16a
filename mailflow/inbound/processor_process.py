"""The inbound processor in a process of its own, as Postfix runs its queue manager beside
its ``smtpd``.

Reading a message and running its handler costs about three times the SMTP conversation
that brought it (the standard library's MIME parser, the handler's statements). In the
server's process they would share one interpreter lock with the conversation (and, in
``mailflow serve``, with the HTTP side); in a process of their own they run on another core,
at a lower priority (``nice`` 10), so that the operating system gives way to the
conversation and to HTTP when the machine is busy, and the handlers catch up when it is not.

The parent (``ProcessorProcess.run``, a supervised task) starts ``python -m
mailflow.inbound.processor_process`` and talks to it over pipes:

- to its stdin: the settings (length-prefixed pickle, from the parent's own loading), then
  one byte each time the server spooled messages (a wake-up; none is written while the
  pipe still holds one). End of file: stop, after the batch in hand;
- from its stdout: one line per handled recipient (``o kind verdict template outcome``) and
  per look at the spool (``s count``), which the parent counts in its own telemetry, so that
  ``/metrics`` shows them as before.

If the child exits, the task fails and the supervisor starts it again (with backoff); what
it had taken and not committed is still in the spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sys
from typing import Any

from mailflow.config import Settings
from mailflow.inbound.processor import POLL_SECONDS, Intake, Processor
from mailflow.services import inbound
from mailflow.supervisor import beat
from mailflow.telemetry import Telemetry

log = logging.getLogger(__name__)

NICENESS = 10
_NONE = "-"


class ProcessorProcess:
    """Runs the processor in a child process until ``stop``; woken by ``intake``."""

    def __init__(self, settings: Settings, intake: Intake, telemetry: Telemetry) -> None:
        self.settings = settings
        self.intake = intake
        self.telemetry = telemetry

    async def run(self, stop: asyncio.Event) -> None:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            __name__,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdin is not None and child.stdout is not None
        settings = pickle.dumps(self.settings)
        child.stdin.write(len(settings).to_bytes(8, "big") + settings)
        reading = asyncio.create_task(self._read(child.stdout))
        exited = asyncio.create_task(child.wait())
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                woken = asyncio.create_task(self.intake.woken.wait())
                await asyncio.wait(
                    (woken, exited, stopping), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED"
                )
                woken.cancel()
                if exited.done():
                    raise RuntimeError(
                        f"the inbound processor exited with status {exited.result()}"
                    )
                if self.intake.woken.is_set():
                    self.intake.woken.clear()
                    transport: Any = child.stdin.transport
                    if transport.get_write_buffer_size() == 0:
                        child.stdin.write(b"w")
                beat()
        finally:
            stopping.cancel()
            await _end(child)
            reading.cancel()
            exited.cancel()
            for task in (reading, exited, stopping):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _read(self, stdout: asyncio.StreamReader) -> None:
        """Count what the child reports in this process's telemetry."""
        while line := await stdout.readline():
            word, *fields = line.decode("ascii", "replace").split()
            if word == "o" and len(fields) == 4:
                kind, verdict, template, outcome = (None if f == _NONE else f for f in fields)
                if kind is not None and verdict is not None:
                    inbound.count(self.telemetry, kind, verdict, template, outcome)
            elif word == "s" and len(fields) == 1 and fields[0].isdigit():
                self.telemetry.inbound_spool_messages.set(int(fields[0]))


async def _end(child: asyncio.subprocess.Process) -> None:
    """Close the child's stdin (it stops after its batch); kill it if it does not."""
    if child.returncode is not None:
        return
    assert child.stdin is not None
    with contextlib.suppress(OSError):
        child.stdin.close()
    try:
        await asyncio.wait_for(child.wait(), 30)
    except TimeoutError:
        log.warning("inbound processor did not stop in 30 s: killed")
        child.kill()
        await child.wait()


# -- the child -----------------------------------------------------------------------------


class _ToParent:
    """The child's figures, written to its stdout for the parent to count."""

    def handled(self, outcomes: list[inbound.Outcome]) -> None:
        lines = []
        for outcome in outcomes:
            verdict = outcome.verdict
            fields = (outcome.kind, verdict.verdict, verdict.template, verdict.email_outcome)
            lines.append("o " + " ".join(_word(f) for f in fields) + "\n")
        sys.stdout.write("".join(lines))
        sys.stdout.flush()

    def waiting(self, count: int) -> None:
        sys.stdout.write(f"s {count}\n")
        sys.stdout.flush()


def _word(value: str | None) -> str:
    return _NONE if not value else "".join(value.split()) or _NONE


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise SystemExit(0)  # the parent went away before it said anything
        data += chunk
    return data


async def _child(settings: Settings) -> None:
    from mailflow.bootstrap import build

    system = build(settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    intake = Intake()

    def on_stdin() -> None:
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if data:
            intake.spooled()
        else:  # end of file: the parent asks it to stop, or is gone
            loop.remove_reader(0)
            stop.set()

    loop.add_reader(0, on_stdin)
    for sig in (signal.SIGINT, signal.SIGTERM):
        # The parent's process group gets Ctrl-C too: the parent says when to stop.
        loop.add_signal_handler(sig, lambda: None)
    try:
        await Processor(system.services, intake, report=_ToParent()).run(stop)
    finally:
        system.close()


def main() -> None:
    from mailflow import logs

    size = int.from_bytes(_read_exactly(0, 8), "big")
    settings = pickle.loads(_read_exactly(0, size))
    assert isinstance(settings, Settings)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    logs.configure(settings.server.log_format, settings.server.log_level)
    asyncio.run(_child(settings))


if __name__ == "__main__":
    main()
