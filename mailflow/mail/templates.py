"""Email templates: shipped files, and admin-edited versions rendered in a sandbox.

Shipped templates live in ``email/<locale>/<key>.{subject,txt,html}.j2``; a published
admin version of a key replaces them. Autoescape applies to HTML only; undefined variables are
errors; subjects are folded onto one line; CSS is inlined into the HTML. The same ``render``
serves sending, previewing and test sends, so a preview is what will be sent.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import css_inline
import jinja2
from jinja2 import pass_context
from jinja2.runtime import Context

from mailflow import i18n
from mailflow.mail import formatting
from mailflow.mail.compose import one_line
from mailflow.mail.sandbox import LimitedSandbox, RenderLimitExceeded, render_bounded

log = logging.getLogger(__name__)

PARTS = ("subject", "txt", "html")
PART_NAMES = {"subject": "subject", "txt": "text", "html": "html"}


class TemplateError(Exception):
    """A template cannot be rendered; ``part`` and ``line`` say where when known."""

    def __init__(self, message: str, part: str | None = None, line: int | None = None) -> None:
        where = f" ({part}, line {line})" if part and line else f" ({part})" if part else ""
        super().__init__(message + where)
        self.message = message
        self.part = part
        self.line = line


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    fallback: str | None = None
    """Why the shipped template was rendered instead of the published version, if it was."""


@dataclass(frozen=True, slots=True)
class TemplateSource:
    """An admin's version of a key: the three parts as text. Version 0 is the shipped one."""

    subject: str
    text: str
    html: str
    version: int = 0

    def part(self, part: str) -> str:
        return {"subject": self.subject, "txt": self.text, "html": self.html}[part]


class Overrides(Protocol):
    def published(self, key: str, locale: str, session: Any = None) -> TemplateSource | None:
        """The published admin version of ``key`` in ``locale``, if any."""


def templates_root() -> Path:
    """The templates folder: inside the installed package, else at the repository's top."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "templates", package.parent / "templates"):
        if (candidate / "email").is_dir():
            return candidate
    raise FileNotFoundError("mailflow templates folder not found")


def _autoescape(name: str | None) -> bool:
    return bool(name and name.endswith((".html.j2", ".html")))


def add_filters(env: jinja2.Environment, timezone: str) -> None:
    @pass_context
    def money(ctx: Context, cents: int, currency: str = "EUR") -> str:
        return formatting.money(cents, currency, ctx["locale"])

    @pass_context
    def datetime_(ctx: Context, moment: Any, fmt: str = "medium") -> str:
        # A page that sets ``zone_shown`` (the admin console) shows the time zone with times.
        zone = bool(ctx.get("zone_shown", False))
        return formatting.when(moment, ctx["locale"], timezone, fmt, zone=zone)

    @pass_context
    def date_(ctx: Context, moment: Any, fmt: str = "long") -> str:
        return formatting.day(moment, ctx["locale"], timezone, fmt)

    @pass_context
    def percent(ctx: Context, ratio: float) -> str:
        return formatting.percent(ratio, ctx["locale"])

    @pass_context
    def reason(ctx: Context, code: str | None) -> str:
        return i18n.t(ctx["locale"], f"reason.{code}") if code else ""

    env.filters.update(money=money, datetime=datetime_, date=date_, percent=percent, reason=reason)


Env = TypeVar("Env", bound=jinja2.Environment)


def _configured(env_class: type[Env], root: Path, timezone: str) -> Env:
    env = env_class(
        loader=jinja2.FileSystemLoader(str(root)),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    add_filters(env, timezone)
    return env


def make_environment(root: Path, timezone: str) -> jinja2.Environment:
    return _configured(jinja2.Environment, root, timezone)


def make_sandbox(root: Path, timezone: str) -> LimitedSandbox:
    """The same environment for admin-edited templates, in the bounded sandbox."""
    return _configured(LimitedSandbox, root, timezone)


def source_name(key: str, locale: str, part: str) -> str:
    """The name an edited part compiles under; ``.html.j2`` turns autoescape on."""
    return f"email/{locale}/{key}.{part}.j2"


def error_line(exc: BaseException, name: str) -> int | None:
    """The template line a render error happened on, from Jinja's rewritten traceback."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return exc.lineno
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in (name, "<template>"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


_INLINER = css_inline.CSSInliner(keep_at_rules=True)
"""At-rules (the dark mode's ``@media (prefers-color-scheme: dark)``) cannot be inlined: they
stay in a ``<style>`` element, for the clients that read one."""

_KEPT_STYLE = re.compile(r"(<head[^>]*>)(<style>.*?</style>)(.*?)(</head>)", re.S | re.I)


def _style_last_in_head(html: str) -> str:
    """css-inline puts the kept ``<style>`` first in ``<head>``: move it to the end, so that
    ``<meta charset>`` stays within the first bytes, where browsers look for it."""
    return _KEPT_STYLE.sub(r"\1\3\2\4", html, count=1)


def inline_css(html: str) -> str:
    """The HTML with its stylesheet moved into ``style`` attributes, as mail clients need."""
    try:
        # css-inline writes U+00A0 back as "&nbsp;"; keep the character, as the rest is.
        return _style_last_in_head(_INLINER.inline(html)).replace("&nbsp;", "\u00a0")
    except ValueError as exc:
        raise TemplateError(f"CSS could not be inlined: {exc}", "html") from exc


class Renderer:
    """Renders an email key in a locale: the published admin version, else the shipped files."""

    def __init__(self, root: Path, timezone: str, overrides: Overrides | None = None) -> None:
        self.root = root
        self.env = make_environment(root, timezone)
        self.sandbox = make_sandbox(root, timezone)
        self.overrides = overrides
        self._compiled: dict[tuple[str, str, str, int], jinja2.Template] = {}
        self._lock = threading.Lock()

    def has(self, key: str, locale: str) -> bool:
        return (self.root / "email" / locale / f"{key}.subject.j2").is_file()

    def shipped(self, key: str, locale: str) -> TemplateSource:
        """The shipped files of ``key`` as a source (version 0)."""
        folder = self.root / "email" / locale
        try:
            parts = [(folder / f"{key}.{part}.j2").read_text(encoding="utf-8") for part in PARTS]
        except FileNotFoundError as exc:
            raise TemplateError(f"no template {key} in {locale}") from exc
        subject, text, html = parts
        return TemplateSource(subject, text, html, version=0)

    def render(
        self,
        key: str,
        locale: str,
        context: dict[str, Any],
        source: TemplateSource | None = None,
        session: Any = None,
    ) -> RenderedEmail:
        """Render for sending or preview. ``source`` renders a given (draft) version instead
        of the published one; any admin version renders in the sandbox."""
        fallback: str | None = None
        if source is None and self.overrides is not None:
            published = self.overrides.published(key, locale, session)
            if published is not None:
                try:
                    return self.render(key, locale, context, source=published)
                except TemplateError as exc:
                    # A published version that fails on real data must not block the state
                    # change it reports: send the shipped template, and say so on the row.
                    fallback = (
                        f"published version {published.version} of {key}/{locale} failed "
                        f"({exc}); the shipped template was sent"
                    )
                    log.error("%s", fallback)
        values = {**context, "locale": locale}
        parts = {part: self._part(key, locale, part, values, source) for part in PARTS}
        return RenderedEmail(
            subject=one_line(parts["subject"]),
            text=parts["txt"].strip() + "\n",
            html=inline_css(parts["html"]),
            fallback=fallback,
        )

    def render_part(
        self,
        key: str,
        locale: str,
        part: str,
        context: dict[str, Any],
        source: TemplateSource,
    ) -> str:
        """One part of a given (draft) version rendered in the sandbox (the HTML inlined)."""
        rendered = self._part(key, locale, part, {**context, "locale": locale}, source)
        return inline_css(rendered) if part == "html" else rendered

    def _part(
        self,
        key: str,
        locale: str,
        part: str,
        values: dict[str, Any],
        source: TemplateSource | None,
    ) -> str:
        name = source_name(key, locale, part)
        try:
            if source is None:
                return self.env.get_template(name).render(values)
            template = self.compile(key, locale, part, source)
            return render_bounded(self.sandbox, template, values)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"no template {exc.name}", part) from exc
        except RenderLimitExceeded as exc:
            raise TemplateError(str(exc), part, error_line(exc, name)) from exc
        except jinja2.TemplateError as exc:
            message = exc.message if isinstance(exc.message, str) else str(exc)
            raise TemplateError(message, part, error_line(exc, name)) from exc
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
            # e.g. an undefined value passed to a filter that computes with it
            message = f"{type(exc).__name__}: {exc}"
            raise TemplateError(message, part, error_line(exc, name)) from exc
        except RecursionError as exc:
            raise TemplateError("the template recurses too deeply", part) from exc

    def compile(self, key: str, locale: str, part: str, source: TemplateSource) -> jinja2.Template:
        """Compile one part of an admin version in the sandbox (cached for saved versions)."""
        cache_key = (key, locale, part, source.version)
        if source.version > 0:
            with self._lock:
                cached = self._compiled.get(cache_key)
            if cached is not None:
                return cached
        name = source_name(key, locale, part)
        code = self.sandbox.compile(source.part(part), name, name)
        template = self.sandbox.template_class.from_code(
            self.sandbox, code, self.sandbox.make_globals(None), None
        )
        if source.version > 0:
            with self._lock:
                self._compiled[cache_key] = template
        return template
