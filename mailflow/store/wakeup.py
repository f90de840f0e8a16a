"""Cross-process wake-up on PostgreSQL: ``LISTEN`` for the ``NOTIFY`` that a commit queuing
mail sends, so a worker in another process delivers within moments without tight polling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg

from mailflow.store.database import OUTBOX_CHANNEL
from mailflow.supervisor import beat

log = logging.getLogger(__name__)
RECONNECT_SECONDS = 2.0
STALE_AFTER = 30.0
"""Not ready (``/readyz``) after this long without a working LISTEN connection."""


async def listen(
    dsn: str, wake: Callable[[], None], stop: asyncio.Event, channel: str = OUTBOX_CHANNEL
) -> None:
    """Call ``wake`` on every notification of ``channel`` until ``stop``; reconnects after an
    outage."""
    while not stop.is_set():
        try:
            conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            log.warning("LISTEN connection failed, polling meanwhile: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECONNECT_SECONDS)
            continue
        try:
            async with conn:
                await conn.execute(f"LISTEN {channel}")
                wake()  # anything queued while nobody was listening
                while not stop.is_set():
                    beat()
                    # Wait at most a second at a time, so that a stop is seen promptly.
                    async for _ in conn.notifies(timeout=1.0):
                        wake()
        except psycopg.OperationalError as exc:
            log.warning("LISTEN connection lost, reconnecting: %s", exc)
