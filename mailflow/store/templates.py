"""Admins' versions of the email templates and which one is live per key and locale.

Version 0 is the shipped files and is never stored: a key without a publication, or published
at 0, uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from mailflow.store.database import Database
from mailflow.store.models import TemplatePublication
from mailflow.store.models import TemplateVersion as VersionRow


@dataclass(frozen=True)
class Draft:
    """A version's parts, and the shipped default it was edited from (``base_*``)."""

    subject: str
    text: str
    html: str
    base_digest: str
    base_subject: str
    base_text: str
    base_html: str
    author: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class TemplateVersion(Draft):
    key: str
    locale: str
    version: int


@dataclass(frozen=True)
class VersionInfo:
    """A stored version without its parts, as the template's page lists them."""

    version: int
    author: str
    created_at: datetime


def _version(row: VersionRow) -> TemplateVersion:
    return TemplateVersion(
        key=row.key,
        locale=row.locale,
        version=row.version,
        subject=row.subject,
        text=row.text,
        html=row.html,
        base_digest=row.base_digest,
        base_subject=row.base_subject,
        base_text=row.base_text,
        base_html=row.base_html,
        author=row.author,
        created_at=row.created_at,
    )


def _latest(session: Session, key: str, locale: str) -> int:
    latest = session.execute(
        select(func.max(col(VersionRow.version))).where(
            col(VersionRow.key) == key, col(VersionRow.locale) == locale
        )
    ).scalar()
    return latest or 0


class TemplateVersions:
    def __init__(self, db: Database) -> None:
        self._db = db

    def published(self) -> dict[tuple[str, str], int]:
        """The live version of each ``(key, locale)`` that has a publication."""
        with self._db.read() as session:
            rows = session.execute(select(TemplatePublication)).scalars()
            return {(p.key, p.locale): p.version for p in rows}

    def published_version(self, key: str, locale: str) -> int:
        with self._db.read() as session:
            row = session.get(TemplatePublication, (key, locale))
            return row.version if row else 0

    def latest(self) -> dict[tuple[str, str], int]:
        """The highest stored version of each ``(key, locale)`` that has one."""
        statement = select(
            col(VersionRow.key), col(VersionRow.locale), func.max(col(VersionRow.version))
        ).group_by(col(VersionRow.key), col(VersionRow.locale))
        with self._db.read() as session:
            return {(k, loc): v for k, loc, v in session.execute(statement)}

    def get(self, key: str, locale: str, version: int) -> TemplateVersion | None:
        with self._db.read() as session:
            row = session.execute(
                select(VersionRow).where(
                    col(VersionRow.key) == key,
                    col(VersionRow.locale) == locale,
                    col(VersionRow.version) == version,
                )
            ).scalar()
            return None if row is None else _version(row)

    def versions(self, key: str, locale: str) -> list[VersionInfo]:
        """The stored versions of the key in the locale, oldest first."""
        statement = (
            select(col(VersionRow.version), col(VersionRow.author), col(VersionRow.created_at))
            .where(col(VersionRow.key) == key, col(VersionRow.locale) == locale)
            .order_by(col(VersionRow.version))
        )
        with self._db.read() as session:
            return [VersionInfo(*row) for row in session.execute(statement)]

    def add(self, key: str, locale: str, draft: Draft) -> int:
        """Store ``draft`` as the next version of the key in the locale; its number. Two
        drafts saved at once cannot get one number: the unique constraint refuses the second."""
        with self._db.transaction() as session:
            version = _latest(session, key, locale) + 1
            session.add(
                VersionRow(
                    key=key,
                    locale=locale,
                    version=version,
                    subject=draft.subject,
                    text=draft.text,
                    html=draft.html,
                    base_digest=draft.base_digest,
                    base_subject=draft.base_subject,
                    base_text=draft.base_text,
                    base_html=draft.base_html,
                    author=draft.author,
                    created_at=draft.created_at,
                )
            )
        return version

    def publish(self, key: str, locale: str, version: int, at: datetime) -> None:
        """Make ``version`` the live one (0: the shipped files)."""
        with self._db.transaction() as session:
            row = session.get(TemplatePublication, (key, locale))
            if row is None:
                row = TemplatePublication(key=key, locale=locale, published_at=at)
            row.version = version
            row.published_at = at
            row.revision += 1
            session.add(row)
