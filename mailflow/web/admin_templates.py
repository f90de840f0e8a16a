"""Console pages for email templates (admins only): the list with published versions and
drift, the editor with its live preview, versions, publish and rollback, the diff with the
shipped default, and test sends. Everything goes through ``services.templates``, the code the
API and the CLI call, so a preview here is what is sent.

The live preview: ``admin.js`` posts the editor's form to ``…/preview`` (JSON: the subject,
the text, or the problems at their part and line) and submits it to ``…/preview.html`` in a
sandboxed frame, which answers with the email's HTML under a CSP of its own.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from mailflow.mail import catalog
from mailflow.mail.templates import TemplateError
from mailflow.mail.validation import Problem
from mailflow.services import console, templates
from mailflow.services.accounts import ConsoleUser, normalized_email
from mailflow.services.errors import InvalidInput
from mailflow.web import console_locale
from mailflow.web.admin_core import (
    FRAME_HEADERS,
    AdminRoute,
    field,
    number,
    redirect,
    render,
    t,
)
from mailflow.web.deps import AdminDep, ServicesDep, pages_of, services_of
from mailflow.web.renders import run_render
from mailflow.web.session import flash, form_with_csrf

router = APIRouter(prefix="/templates", route_class=AdminRoute)

PARTS = ("subject", "text", "html")


def _url(key: str, locale: str, suffix: str = "", version: int | None = None) -> str:
    url = f"/admin/templates/{key}/{locale}{suffix}"
    return f"{url}?version={version}" if version is not None else url


def _parts_of(form: dict[str, Any]) -> dict[str, str]:
    """The three parts as submitted; browsers send textareas with CRLF line ends."""
    return {part: field(form, part).replace("\r\n", "\n") for part in PARTS}


def _sale_id(form: dict[str, Any]) -> tuple[int | None, list[Problem]]:
    raw = field(form, "sale_id").strip().removeprefix("#")
    if not raw:
        return None, []
    sale_id = number(raw, minimum=1)
    if sale_id is None:
        return None, [Problem("sale", None, t("admin.templates.bad_sale", value=raw))]
    return sale_id, []


def _preview(
    request: Request, key: str, locale: str, parts: dict[str, str], sale_id: int | None
) -> tuple[dict[str, str] | None, list[Problem]]:
    try:
        rendered = templates.preview(services_of(request), key, locale, sale_id=sale_id, **parts)
    except templates.TemplateInvalid as exc:
        return None, exc.problems
    except InvalidInput as exc:
        return None, [Problem("sale", None, exc.message.removeprefix(f"{exc.field}: "))]
    return rendered, []


def _by_part(problems: list[Problem]) -> dict[str, list[Problem]]:
    """Each part's problems, shown under its text area (all are in the summary too)."""
    return {part: [p for p in problems if p.part == part] for part in PARTS}


# --- pages ---------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def list_page(request: Request, user: AdminDep, ctx: ServicesDep) -> HTMLResponse:
    rows = templates.list_templates(ctx)
    keys: dict[str, dict[str, Any]] = {}
    for row in rows:
        kind = catalog.KINDS[row["key"]]
        entry = keys.setdefault(row["key"], {"key": row["key"], "kind": kind, "locales": []})
        entry["locales"].append(row)
    drifted = sum(1 for row in rows if row["default_changed"])
    return render(
        request,
        "admin/templates.html.j2",
        t("admin.nav.templates"),
        keys=list(keys.values()),
        drifted=drifted,
    )


def _editor(
    request: Request,
    key: str,
    locale: str,
    version: int | None,
    *,
    parts: dict[str, str] | None = None,
    problems: list[Problem] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ctx = services_of(request)
    view = templates.show(ctx, key, locale, version)
    parts = parts if parts is not None else {part: view[part] for part in PARTS}
    preview = None
    if problems is None:  # showing a version, not a refused draft: render it
        preview, problems = _preview(request, key, locale, parts, None)
    kind = catalog.KINDS[key]
    return render(
        request,
        "admin/template_edit.html.j2",
        f"{key} · {locale}",
        status_code,
        view=view,
        kind=kind,
        key=key,
        email_locale=locale,
        parts=parts,
        problems=problems,
        by_part=_by_part(problems),
        preview=preview,
        urls={
            "self": _url(key, locale),
            "draft": _url(key, locale, "/draft"),
            "preview": _url(key, locale, "/preview"),
            "preview_html": _url(key, locale, "/preview.html"),
            "frame": _url(key, locale, "/preview.html", view["version"]),
            "publish": _url(key, locale, "/publish"),
            "rollback": _url(key, locale, "/rollback"),
            "diff": _url(key, locale, "/diff"),
            "test_send": _url(key, locale, "/test-send"),
        },
    )


@router.get("/{key}/{locale}", response_class=HTMLResponse)
async def edit_page(
    request: Request, key: str, locale: str, user: AdminDep, version: int | None = None
) -> HTMLResponse:
    return await run_render(partial(_editor, request, key, locale, version))


@router.post("/{key}/{locale}/draft")
async def save_draft(request: Request, key: str, locale: str, user: AdminDep) -> Response:
    form = await form_with_csrf(request)
    return await run_render(partial(_save_draft, request, key, locale, user, form))


def _save_draft(
    request: Request, key: str, locale: str, user: ConsoleUser, form: dict[str, Any]
) -> Response:
    ctx = services_of(request)
    parts = _parts_of(form)
    base_version = number(field(form, "base_version"))
    current = templates.show(ctx, key, locale, base_version)
    if all(parts[part] == current[part] for part in PARTS):
        flash(request, t("admin.templates.unchanged", version=current["version"]))
        return redirect(_url(key, locale, version=current["version"]))
    try:
        version = templates.save_draft(ctx, key, locale, **parts, author=user.email)
    except templates.TemplateInvalid as exc:
        return _editor(
            request, key, locale, base_version, parts=parts, problems=exc.problems, status_code=422
        )
    flash(request, t("admin.templates.saved", version=version))
    return redirect(_url(key, locale, version=version))


@router.post("/{key}/{locale}/publish")
async def publish(request: Request, key: str, locale: str, user: AdminDep) -> Response:
    form = await form_with_csrf(request)
    return await run_render(partial(_publish, request, key, locale, form, False))


@router.post("/{key}/{locale}/rollback")
async def rollback(request: Request, key: str, locale: str, user: AdminDep) -> Response:
    form = await form_with_csrf(request)
    return await run_render(partial(_publish, request, key, locale, form, True))


def _publish(
    request: Request, key: str, locale: str, form: dict[str, Any], is_rollback: bool
) -> Response:
    version = number(field(form, "version"))
    if version is None:
        flash(request, t("admin.templates.bad_version"), "error")
        return redirect(_url(key, locale))
    try:
        templates.publish(services_of(request), key, locale, version)
    except templates.TemplateInvalid as exc:
        lines = "; ".join(f"{p.part} line {p.line or '-'}: {p.message}" for p in exc.problems)
        flash(request, t("admin.templates.not_published", version=version, problems=lines), "error")
        return redirect(_url(key, locale, version=version))
    message = "admin.templates.rolled_back" if is_rollback else "admin.templates.published"
    shipped = t("admin.templates.shipped_note") if version == 0 else ""
    flash(request, t(message, version=version, shipped=shipped, email_key=key, email_locale=locale))
    return redirect(_url(key, locale))


@router.post("/{key}/{locale}/preview")
async def preview_json(request: Request, key: str, locale: str, user: AdminDep) -> JSONResponse:
    form = await form_with_csrf(request)
    return await run_render(partial(_preview_json, request, key, locale, form))


def _preview_json(request: Request, key: str, locale: str, form: dict[str, Any]) -> JSONResponse:
    sale_id, problems = _sale_id(form)
    rendered = None
    if not problems:
        rendered, problems = _preview(request, key, locale, _parts_of(form), sale_id)
    # Problems are what a preview is for while typing: a 200 that lists them, not an error
    # status that browsers log as a failed request at each pause in typing.
    if rendered is None:
        body: dict[str, Any] = {"errors": [p.as_dict() for p in problems]}
    else:
        body = {"subject": rendered["subject"], "text": rendered["text"], "errors": []}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.post("/{key}/{locale}/preview.html", response_class=HTMLResponse)
async def preview_html(request: Request, key: str, locale: str, user: AdminDep) -> HTMLResponse:
    form = await form_with_csrf(request)
    return await run_render(partial(_preview_frame, request, key, locale, form))


def _preview_frame(request: Request, key: str, locale: str, form: dict[str, Any]) -> HTMLResponse:
    sale_id, problems = _sale_id(form)
    rendered = None
    if not problems:
        rendered, problems = _preview(request, key, locale, _parts_of(form), sale_id)
    return _frame(request, rendered, problems)


@router.get("/{key}/{locale}/preview.html", response_class=HTMLResponse)
async def version_html(
    request: Request, key: str, locale: str, user: AdminDep, version: int | None = None
) -> HTMLResponse:
    """A saved version's HTML as it would be sent, with the key's sample data."""
    return await run_render(partial(_version_frame, request, key, locale, version))


def _version_frame(request: Request, key: str, locale: str, version: int | None) -> HTMLResponse:
    view = templates.show(services_of(request), key, locale, version)
    rendered, problems = _preview(request, key, locale, {p: view[p] for p in PARTS}, None)
    return _frame(request, rendered, problems)


def _frame(
    request: Request, rendered: dict[str, str] | None, problems: list[Problem]
) -> HTMLResponse:
    if rendered is not None:
        return HTMLResponse(rendered["html"], headers=FRAME_HEADERS)
    html = pages_of(request).html(
        "admin/frame_problems.html.j2", console_locale.current(), problems=problems
    )
    return HTMLResponse(html, headers=FRAME_HEADERS)


@router.get("/{key}/{locale}/diff", response_class=HTMLResponse)
def diff_page(
    request: Request, key: str, locale: str, user: AdminDep, version: int | None = None
) -> HTMLResponse:
    ctx = services_of(request)
    view = templates.show(ctx, key, locale, version)
    version = view["version"]
    against_default = drift = None
    if version > 0:
        against_default = console.diff_with_default(ctx, key, locale, version)
        drift = templates.diff(ctx, key, locale, version)
    return render(
        request,
        "admin/template_diff.html.j2",
        f"{key} · {locale} · diff",
        view=view,
        key=key,
        email_locale=locale,
        against_default=against_default,
        drift=drift,
        edit_url=_url(key, locale, version=version),
        diff_url=_url(key, locale, "/diff"),
    )


@router.post("/{key}/{locale}/test-send")
async def test_send(request: Request, key: str, locale: str, user: AdminDep) -> Response:
    form = await form_with_csrf(request)
    return await run_render(partial(_test_send, request, key, locale, form))


def _test_send(request: Request, key: str, locale: str, form: dict[str, Any]) -> Response:
    back_url = _url(key, locale, version=number(field(form, "back_version")))
    to = normalized_email(field(form, "to"))
    sale_id, problems = _sale_id(form)
    if to is None:
        flash(request, t("admin.templates.bad_address", value=field(form, "to")), "error")
        return redirect(back_url)
    if problems:
        flash(request, problems[0].message, "error")
        return redirect(back_url)
    try:
        outbox_id = templates.test_send(services_of(request), key, locale, to, sale_id=sale_id)
    except InvalidInput as exc:
        flash(request, exc.message, "error")
        return redirect(back_url)
    except TemplateError as exc:
        flash(request, t("admin.templates.not_sent", error=str(exc)), "error")
        return redirect(back_url)
    flash(request, t("admin.templates.test_sent", to=to, id=outbox_id))
    return redirect(back_url)
