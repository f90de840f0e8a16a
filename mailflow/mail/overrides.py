"""Published admin versions, read by the renderer through a short cache.

A publish or rollback in this process clears the cache at once; other processes see it within
``ttl_seconds`` (they re-read the small publications table at most that often).
"""

from __future__ import annotations

import threading
import time

from mailflow.mail.templates import TemplateSource
from mailflow.store.database import Database, Transaction
from mailflow.store.templates import published_versions

DEFAULT_TTL_SECONDS = 2.0


class OverrideStore:
    def __init__(self, db: Database, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        self.db = db
        self.ttl = ttl_seconds
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._published: dict[tuple[str, str], TemplateSource] = {}

    def published(
        self, key: str, locale: str, session: Transaction | None = None
    ) -> TemplateSource | None:
        """``session``: the caller's open transaction, used for a refresh so that a render
        inside a transaction never waits for a second connection from the pool."""
        with self._lock:
            if time.monotonic() - self._loaded_at > self.ttl:
                if session is not None:
                    self._published = self._read(session)
                else:
                    with self.db.read() as own:
                        self._published = self._read(own)
                self._loaded_at = time.monotonic()
            return self._published.get((key, locale))

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")

    @staticmethod
    def _read(session: Transaction) -> dict[tuple[str, str], TemplateSource]:
        return {
            (row.key, row.locale): TemplateSource(row.subject, row.text, row.html, row.version)
            for row in published_versions(session)
        }
