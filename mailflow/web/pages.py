"""HTML pages rendered from ``templates/web``, with the headers every page sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from mailflow import i18n
from mailflow.mail.templates import add_filters

CSP_WITH_SCRIPTS = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'self'; "
    "base-uri 'none'"
)
PAGE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


def browser_locale(request: Request) -> str | None:
    """The first language the browser asks for (pages fall back to it before they know whose
    they are)."""
    header = request.headers.get("accept-language", "")
    return header.split(",")[0].split(";")[0].strip() or None


class Pages:
    def __init__(self, root: Path, timezone: str) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(root / "web")),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.timezone = timezone
        add_filters(self.env, timezone)
        self.env.globals["status_label"] = i18n.status_label

    def render(
        self,
        name: str,
        locale: str | None,
        status_code: int = 200,
        *,
        scripts: bool = False,
        **context: Any,
    ) -> HTMLResponse:
        """A page with the headers every page sends; ``scripts`` allows mailflow's own JS."""
        html = self.html(name, locale, **context)
        headers = dict(PAGE_HEADERS)
        if scripts:
            headers["Content-Security-Policy"] = CSP_WITH_SCRIPTS
            headers["X-Frame-Options"] = "SAMEORIGIN"
        return HTMLResponse(html, status_code=status_code, headers=headers)

    def html(self, name: str, locale: str | None, **context: Any) -> str:
        """The text of a page in ``locale``, with ``t`` and ``tn`` to word its messages."""
        locale = i18n.pick_locale(locale)

        def t(key: str, /, **values: object) -> str:
            return _worded(i18n.text(locale, key), values)

        def tn(key: str, count: int, /, **values: object) -> str:
            return i18n.tn(locale, key, count, **values)

        return self.env.get_template(name).render(locale=locale, t=t, tn=tn, **context)


def _worded(text: str, values: dict[str, object]) -> str:
    """A message for a page: filled with ``values``; when one of them is markup (a link, a
    ``<strong>`` built in the template), the message is escaped and the markup kept."""
    if not any(isinstance(value, Markup) for value in values.values()):
        return i18n.fill(text, values)
    return Markup(i18n.fill(escape(text), {k: escape(v) for k, v in values.items()}))
