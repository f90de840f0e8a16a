"""Whether the system can serve: ``/healthz``, and the errors that mean "try again shortly"."""

from __future__ import annotations

from mailflow.services.context import ServiceContext
from mailflow.store import health

DATABASE_UNAVAILABLE = health.UNAVAILABLE
"""What any service call raises when the database is out of reach or out of connections;
nothing was changed (the transaction did not commit)."""


def check(ctx: ServiceContext) -> None:
    """Raises one of ``DATABASE_UNAVAILABLE`` unless the database answers."""
    health.ping(ctx.db)
