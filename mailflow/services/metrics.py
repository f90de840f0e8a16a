"""The figures the operators' ``/metrics`` shows (read as they are, no cache)."""

from __future__ import annotations

from mailflow.services.context import ServiceContext
from mailflow.store.metrics import StatusCounts, status_counts

__all__ = ["StatusCounts", "status_counts_of"]


def status_counts_of(ctx: ServiceContext) -> StatusCounts:
    """Outbox messages and sales by status, and the oldest queued email's age."""
    with ctx.db.read() as tx:
        return status_counts(tx, ctx.clock())
