"""Templates admins edit: drafts, publish, rollback, preview, test send, drift.

Every email key exists as shipped files (version 0). An admin saves a draft (validated first;
a draft changes no mail), publishes it (what the renderer uses from then on), or rolls back
to any earlier version, 0 included. Each version remembers the shipped default it was edited
from; when a release changes that default, ``default_changed`` says so and ``diff`` shows it.
"""

from __future__ import annotations

import difflib
import hashlib
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from mailflow.mail import catalog
from mailflow.mail.formatting import SUPPORTED_LOCALES
from mailflow.mail.outbox import Recipient
from mailflow.mail.templates import PART_NAMES, TemplateError, TemplateSource
from mailflow.mail.validation import Problem, validate
from mailflow.services import notify
from mailflow.services.context import ServiceContext
from mailflow.services.errors import InvalidInput, NotFound, ServiceError
from mailflow.store.models import Sale, TemplatePublication, TemplateVersion


class TemplateInvalid(ServiceError):
    """The template has problems; ``problems`` lists each with its part and line."""

    code = "invalid_template"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.part}:{p.line or '-'}: {p.message}" for p in problems))
        self.problems = problems


def _kind(key: str, locale: str) -> catalog.EmailKind:
    if key not in catalog.KINDS:
        raise NotFound(f"no email key {key!r}")
    if locale not in SUPPORTED_LOCALES:
        raise NotFound(f"no locale {locale!r} (there are: {', '.join(SUPPORTED_LOCALES)})")
    return catalog.KINDS[key]


def digest(source: TemplateSource) -> str:
    return hashlib.sha256(
        "\x00".join((source.subject, source.text, source.html)).encode()
    ).hexdigest()


def _published_version(session: Session, key: str, locale: str) -> int:
    row = session.get(TemplatePublication, (key, locale))
    return row.version if row else 0


def _version(session: Session, key: str, locale: str, version: int) -> TemplateVersion:
    row = session.execute(
        select(TemplateVersion).where(
            TemplateVersion.key == key,
            TemplateVersion.locale == locale,
            TemplateVersion.version == version,
        )
    ).scalar()
    if row is None:
        raise NotFound(f"{key}/{locale} has no version {version}")
    return row  # type: ignore[no-any-return]


def _source_of(
    ctx: ServiceContext, session: Session, key: str, locale: str, version: int
) -> TemplateSource:
    if version == 0:
        return ctx.renderer.shipped(key, locale)
    row = _version(session, key, locale, version)
    return TemplateSource(row.subject, row.text, row.html, row.version)


def _drift(ctx: ServiceContext, row: TemplateVersion | None, key: str, locale: str) -> bool:
    return row is not None and row.base_digest != digest(ctx.renderer.shipped(key, locale))


def list_templates(ctx: ServiceContext) -> list[dict[str, Any]]:
    with ctx.db.read() as session:
        published = {
            (p.key, p.locale): p.version
            for p in session.execute(select(TemplatePublication)).scalars()
        }
        latest = {
            (k, loc): v
            for k, loc, v in session.execute(
                select(
                    TemplateVersion.key, TemplateVersion.locale, func.max(TemplateVersion.version)
                ).group_by(TemplateVersion.key, TemplateVersion.locale)
            )
        }
        rows = []
        for key in sorted(catalog.KINDS):
            for locale in SUPPORTED_LOCALES:
                version = published.get((key, locale), 0)
                current = _version(session, key, locale, version) if version else None
                rows.append(
                    {
                        "key": key,
                        "locale": locale,
                        "published_version": version,
                        "latest_version": latest.get((key, locale), 0),
                        "default_changed": _drift(ctx, current, key, locale),
                    }
                )
    return rows


def show(ctx: ServiceContext, key: str, locale: str, version: int | None = None) -> dict[str, Any]:
    kind = _kind(key, locale)
    with ctx.db.read() as session:
        published = _published_version(session, key, locale)
        version = published if version is None else version
        source = _source_of(ctx, session, key, locale, version)
        row = _version(session, key, locale, version) if version else None
        drafts = session.execute(
            select(TemplateVersion.version, TemplateVersion.author, TemplateVersion.created_at)
            .where(TemplateVersion.key == key, TemplateVersion.locale == locale)
            .order_by(TemplateVersion.version)
        ).all()
    return {
        "key": key,
        "locale": locale,
        "version": version,
        "published_version": published,
        "subject": source.subject,
        "text": source.text,
        "html": source.html,
        "variables": kind.variables,
        "requires": [r.what for r in kind.requires],
        "drafts": [
            {"version": v, "author": a, "created_at": c, "published": v == published}
            for v, a, c in drafts
        ],
        "default_changed": _drift(ctx, row, key, locale),
    }


def check(ctx: ServiceContext, key: str, locale: str, source: TemplateSource) -> list[Problem]:
    return validate(ctx.renderer, _kind(key, locale), locale, source)


def save_draft(
    ctx: ServiceContext,
    key: str,
    locale: str,
    subject: str,
    text: str,
    html: str,
    author: str = "",
) -> int:
    """Validate and store a new version (not published); its number."""
    _kind(key, locale)
    source = TemplateSource(subject, text, html)
    problems = check(ctx, key, locale, source)
    if problems:
        raise TemplateInvalid(problems)
    base = ctx.renderer.shipped(key, locale)
    with ctx.db.transaction() as session:
        latest = session.execute(
            select(func.max(TemplateVersion.version)).where(
                TemplateVersion.key == key, TemplateVersion.locale == locale
            )
        ).scalar()
        version = (latest or 0) + 1
        session.add(
            TemplateVersion(
                key=key,
                locale=locale,
                version=version,
                subject=subject,
                text=text,
                html=html,
                base_digest=digest(base),
                base_subject=base.subject,
                base_text=base.text,
                base_html=base.html,
                author=author,
                created_at=ctx.clock(),
            )
        )
    return version


def publish(ctx: ServiceContext, key: str, locale: str, version: int) -> dict[str, Any]:
    """Make ``version`` the live one (0: the shipped files). Rollback is the same act."""
    _kind(key, locale)
    if version < 0:
        raise InvalidInput("version", "must be 0 or more")
    with ctx.db.read() as session:
        source = _source_of(ctx, session, key, locale, version)
    problems = check(ctx, key, locale, source)
    if problems:
        raise TemplateInvalid(problems)
    with ctx.db.transaction() as session:
        row = session.get(TemplatePublication, (key, locale))
        if row is None:
            row = TemplatePublication(key=key, locale=locale, published_at=ctx.clock())
        row.version = version
        row.published_at = ctx.clock()
        row.revision += 1
        session.add(row)
    ctx.overrides.invalidate()
    return show(ctx, key, locale)


def diff(ctx: ServiceContext, key: str, locale: str, version: int) -> dict[str, Any]:
    """How the shipped default changed since ``version`` was edited from it."""
    _kind(key, locale)
    with ctx.db.read() as session:
        row = _version(session, key, locale, version)
    current = ctx.renderer.shipped(key, locale)
    parts = {}
    for part, old, new in (
        ("subject", row.base_subject, current.subject),
        ("text", row.base_text, current.text),
        ("html", row.base_html, current.html),
    ):
        parts[part] = "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                f"default when version {version} was edited",
                "default now",
            )
        )
    return {
        "key": key,
        "locale": locale,
        "version": version,
        "default_changed": any(parts.values()),
        "diff": parts,
    }


def _context(ctx: ServiceContext, key: str, sale_id: int | None) -> dict[str, Any]:
    kind = catalog.KINDS[key]
    if sale_id is None:
        return kind.sample_context()
    with ctx.db.read() as session:
        sale = session.get(Sale, sale_id)
        if sale is None:
            raise InvalidInput("sale_id", f"no sale {sale_id}")
        context = notify.preview_context(ctx, session, key, sale)
    # Variables the real sale cannot give (e.g. a tier email's dates) come from the sample.
    return {**kind.sample_context(), **context}


def preview(
    ctx: ServiceContext,
    key: str,
    locale: str,
    *,
    subject: str | None = None,
    text: str | None = None,
    html: str | None = None,
    sale_id: int | None = None,
) -> dict[str, str]:
    """Render what would be sent, through the renderer that sends: the published version,
    or the given parts over it, with the key's sample context or a real sale's."""
    _kind(key, locale)
    source = None
    if subject is not None or text is not None or html is not None:
        with ctx.db.read() as session:
            base = _source_of(ctx, session, key, locale, _published_version(session, key, locale))
        source = TemplateSource(
            subject if subject is not None else base.subject,
            text if text is not None else base.text,
            html if html is not None else base.html,
        )
        problems = check(ctx, key, locale, source)
        if problems:
            raise TemplateInvalid(problems)
    context = _context(ctx, key, sale_id)
    try:
        rendered = ctx.renderer.render(key, locale, context, source=source)
    except TemplateError as exc:
        part = PART_NAMES.get(exc.part or "", exc.part or "template")
        raise TemplateInvalid([Problem(part, exc.line, exc.message)]) from exc
    return {"subject": rendered.subject, "text": rendered.text, "html": rendered.html}


def test_send(
    ctx: ServiceContext, key: str, locale: str, to: str, *, sale_id: int | None = None
) -> int:
    """Queue the live version of ``key`` to ``to`` with the sample (or a sale's) context."""
    kind = _kind(key, locale)
    context = _context(ctx, key, sale_id)
    if "links" in context:
        # A test send goes to anyone: never with a real sale's working action links.
        sample_links = kind.sample_context().get("links")
        if sample_links is None:
            del context["links"]
        else:
            context["links"] = sample_links
    with ctx.db.transaction() as session:
        return ctx.outbox.queue(session, key, Recipient("", to, locale), context)
