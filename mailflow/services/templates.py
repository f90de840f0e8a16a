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

from mailflow.mail import catalog
from mailflow.mail.formatting import SUPPORTED_LOCALES
from mailflow.mail.outbox import Recipient
from mailflow.mail.templates import PART_NAMES, TemplateError, TemplateSource
from mailflow.mail.validation import Problem, validate
from mailflow.services import notify, sales
from mailflow.services.context import ServiceContext
from mailflow.services.errors import InvalidInput, NotFound, ServiceError
from mailflow.store.templates import Draft, TemplateVersion


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


def _version(ctx: ServiceContext, key: str, locale: str, version: int) -> TemplateVersion:
    row = ctx.template_versions.get(key, locale, version)
    if row is None:
        raise NotFound(f"{key}/{locale} has no version {version}")
    return row


def _source_of(ctx: ServiceContext, key: str, locale: str, version: int) -> TemplateSource:
    if version == 0:
        return ctx.renderer.shipped(key, locale)
    row = _version(ctx, key, locale, version)
    return TemplateSource(row.subject, row.text, row.html, row.version)


def _drift(ctx: ServiceContext, row: TemplateVersion | None, key: str, locale: str) -> bool:
    return row is not None and row.base_digest != digest(ctx.renderer.shipped(key, locale))


def list_templates(ctx: ServiceContext) -> list[dict[str, Any]]:
    published = ctx.template_versions.published()
    latest = ctx.template_versions.latest()
    rows = []
    for key in sorted(catalog.KINDS):
        for locale in SUPPORTED_LOCALES:
            version = published.get((key, locale), 0)
            current = _version(ctx, key, locale, version) if version else None
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
    published = ctx.template_versions.published_version(key, locale)
    version = published if version is None else version
    source = _source_of(ctx, key, locale, version)
    row = _version(ctx, key, locale, version) if version else None
    drafts = ctx.template_versions.versions(key, locale)
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
            {
                "version": d.version,
                "author": d.author,
                "created_at": d.created_at,
                "published": d.version == published,
            }
            for d in drafts
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
    draft = Draft(
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
    return ctx.template_versions.add(key, locale, draft)


def publish(ctx: ServiceContext, key: str, locale: str, version: int) -> dict[str, Any]:
    """Make ``version`` the live one (0: the shipped files). Rollback is the same act."""
    _kind(key, locale)
    if version < 0:
        raise InvalidInput("version", "must be 0 or more")
    source = _source_of(ctx, key, locale, version)
    problems = check(ctx, key, locale, source)
    if problems:
        raise TemplateInvalid(problems)
    ctx.template_versions.publish(key, locale, version, ctx.clock())
    ctx.overrides.invalidate()
    return show(ctx, key, locale)


def diff(ctx: ServiceContext, key: str, locale: str, version: int) -> dict[str, Any]:
    """How the shipped default changed since ``version`` was edited from it."""
    _kind(key, locale)
    row = _version(ctx, key, locale, version)
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
    # The context as the sending code builds it.
    with ctx.db.read() as tx:
        try:
            about = sales.facts_of(tx, sale_id)
        except NotFound as exc:
            raise InvalidInput("sale_id", f"no sale {sale_id}") from exc
        context = notify.preview_context(ctx, tx, about)
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
        published = ctx.template_versions.published_version(key, locale)
        base = _source_of(ctx, key, locale, published)
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
    """Queue the live version of ``key`` to ``to`` with the sample (or a sale's) context,
    marked as a test (``[TEST]`` subject, ``X-Mailflow-Test: yes``)."""
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
        return ctx.outbox.queue(session, key, Recipient("", to, locale), context, test=True)
