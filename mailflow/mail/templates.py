"""Email templates: ``email/<locale>/<key>.{subject,txt,html}.j2``, rendered with Jinja.

Autoescape applies to ``.html.j2`` names only; undefined variables are errors; subjects are
stripped of newlines. The same ``render`` serves sending and previewing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import pass_context
from jinja2.runtime import Context

from mailflow import i18n
from mailflow.mail import formatting
from mailflow.mail.compose import one_line

PARTS = ("subject", "txt", "html")


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
        return formatting.when(moment, ctx["locale"], timezone, fmt)

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


def make_environment(root: Path, timezone: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    add_filters(env, timezone)
    return env


class Renderer:
    """Renders an email key in a locale from the shipped template files."""

    def __init__(self, root: Path, timezone: str) -> None:
        self.root = root
        self.env = make_environment(root, timezone)

    def has(self, key: str, locale: str) -> bool:
        return (self.root / "email" / locale / f"{key}.subject.j2").is_file()

    def render(self, key: str, locale: str, context: dict[str, Any]) -> RenderedEmail:
        values = {**context, "locale": locale}
        parts: dict[str, str] = {}
        for part in PARTS:
            name = f"email/{locale}/{key}.{part}.j2"
            try:
                template = self.env.get_template(name)
                parts[part] = template.render(values)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(exc.message or str(exc), part, exc.lineno) from exc
            except jinja2.TemplateNotFound as exc:
                raise TemplateError(f"no template {exc.name}", part) from exc
            except jinja2.UndefinedError as exc:
                raise TemplateError(str(exc), part) from exc
            except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
                # e.g. an undefined value passed to a filter that computes with it
                raise TemplateError(f"{type(exc).__name__}: {exc}", part) from exc
        return RenderedEmail(
            subject=one_line(parts["subject"]),
            text=parts["txt"].strip() + "\n",
            html=parts["html"],
        )
