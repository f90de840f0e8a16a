"""Console pages for mail: the outbox (status, attempts, last error; retry a dead message) and
the embedded inbox (what it received). A message of either is shown four ways: its HTML part
in a sandboxed frame, its text part, the raw message, and the links it carries."""

from __future__ import annotations

import re
from collections.abc import Callable
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from mailflow.mail.outbox import BOUNCED, DEAD, QUEUED, SENT, SUPPRESSED
from mailflow.services import console
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict
from mailflow.web.admin_core import (
    FRAME_HEADERS,
    AdminRoute,
    page_number,
    redirect,
    render,
    t,
)
from mailflow.web.deps import ConsoleUserDep, IdPath, ServicesDep, SystemDep
from mailflow.web.session import flash, form_with_csrf

router = APIRouter(route_class=AdminRoute)

VIEWS = ("html", "text", "raw", "links")
SHOWN_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "X-Mailflow-Template")
RAW_SHOWN_BYTES = 512 * 1024
_URL = re.compile(r"https?://[^\s<>\"']+")


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href") or ""
            self._open.append([href, ""])

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open:
            href, text = self._open.pop()
            self.links.append((href, " ".join(text.split())))


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):
        # An inbound message with an unknown charset or a broken encoding: show its bytes.
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content.replace("\r\n", "\n") if isinstance(content, str) else ""


def _links(text: str, html: str) -> list[dict[str, Any]]:
    """Every link of the message, with its words in the HTML part and the parts it is in."""
    found: dict[str, dict[str, Any]] = {}
    parser = _Anchors()
    parser.feed(html)
    parser.close()
    for href, words in parser.links:
        if href:
            entry = found.setdefault(href, {"url": href, "words": words, "parts": []})
            if "html" not in entry["parts"]:
                entry["parts"].append("html")
    for url in _URL.findall(text):
        entry = found.setdefault(url, {"url": url, "words": "", "parts": []})
        if "text" not in entry["parts"]:
            entry["parts"].append("text")
    return list(found.values())


def message_view(raw: bytes) -> dict[str, Any]:
    """A stored message as the console shows it: headers, text, HTML, raw, links."""
    message: EmailMessage = message_from_bytes(raw, policy=email_policy.default)
    text, html = _body(message, "plain"), _body(message, "html")
    headers = []
    for name in SHOWN_HEADERS:
        value = message.get(name)
        if value is not None:
            headers.append((name, str(value)))
    return {
        "headers": headers,
        "text": text,
        "html": html,
        "raw": raw[:RAW_SHOWN_BYTES].decode("utf-8", "replace"),
        "raw_cut": len(raw) > RAW_SHOWN_BYTES,
        "links": _links(text, html),
    }


def _view_of(requested: str | None, view: dict[str, Any]) -> str:
    if requested in VIEWS:
        return requested
    return "html" if view["html"] else "text"


def _frame(raw: bytes) -> HTMLResponse:
    html = message_view(raw)["html"] or "<p>This message has no HTML part.</p>"
    return HTMLResponse(html, headers=FRAME_HEADERS)


def _eml(raw: bytes, name: str) -> Response:
    return Response(
        raw,
        media_type="message/rfc822",
        headers={
            "Content-Disposition": f'attachment; filename="{name}.eml"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- outbox --------------------------------------------------------------------------------


@router.get("/outbox", response_class=HTMLResponse)
def outbox_page(
    request: Request,
    user: ConsoleUserDep,
    ctx: ServicesDep,
    status: str = "",
    page: int | None = None,
) -> HTMLResponse:
    shown = (QUEUED, SENT, DEAD, BOUNCED, SUPPRESSED)
    status = status if status in shown else ""
    return render(
        request,
        "admin/outbox.html.j2",
        t("admin.nav.outbox"),
        found=console.list_outbox(ctx, status or None, page=page_number(page)),
        counts=console.outbox_counts(ctx),
        status=status,
        statuses=shown,
    )


def _message_page(
    request: Request,
    kind: str,
    message_id: int,
    row: Any,
    raw: bytes,
    view: str | None,
    history: list[Any],
) -> HTMLResponse:
    """One message of the outbox or the inbox: its HTML, text, raw and links views."""
    shown = message_view(raw)
    return render(
        request,
        "admin/message.html.j2",
        t(f"admin.{kind}.message", id=message_id),
        kind=kind,
        row=row,
        message=shown,
        view=_view_of(view, shown),
        base=f"/admin/{kind}/{message_id}",
        history=history,
    )


@router.post("/outbox/{message_id}/retry")
async def retry(
    request: Request, message_id: IdPath, user: ConsoleUserDep, ctx: ServicesDep
) -> Response:
    form = await form_with_csrf(request)
    to_message = form.get("back") == "message"
    return await run_in_threadpool(_retry, request, ctx, message_id, to_message)


def _retry(request: Request, ctx: ServiceContext, message_id: int, to_message: bool) -> Response:
    try:
        console.retry_message(ctx, message_id)
    except Conflict as exc:
        flash(request, exc.message, "error")
    else:
        flash(request, t("admin.outbox.retried", id=message_id))
    return redirect(f"/admin/outbox/{message_id}" if to_message else f"/admin/outbox?status={DEAD}")


# --- inbox ---------------------------------------------------------------------------------


@router.get("/inbox", response_class=HTMLResponse)
def inbox_page(
    request: Request, user: ConsoleUserDep, system: SystemDep, page: int | None = None
) -> HTMLResponse:
    return render(
        request,
        "admin/inbox.html.j2",
        t("admin.nav.inbox"),
        found=console.list_inbox(system.services, page=page_number(page)),
        embedded=system.settings.smtp.mode == "embedded",
        port=system.settings.smtp.embedded_port,
    )


def _message_routes(
    kind: str,
    load: Callable[[ServiceContext, int], Any],
    raw_of: Callable[[Any], bytes],
    history: Callable[[ServiceContext, int], list[Any]] = lambda ctx, message_id: [],
) -> None:
    """The routes of one message of the ``kind`` box (outbox or inbox): its page, its HTML in
    a sandboxed frame, and the message as an .eml file."""

    @router.get(f"/{kind}/{{message_id}}", response_class=HTMLResponse, name=f"{kind}_message")
    def page(
        request: Request,
        message_id: IdPath,
        user: ConsoleUserDep,
        ctx: ServicesDep,
        view: str | None = None,
    ) -> HTMLResponse:
        row = load(ctx, message_id)
        past = history(ctx, message_id)
        return _message_page(request, kind, message_id, row, raw_of(row), view, past)

    @router.get(f"/{kind}/{{message_id}}/html", response_class=HTMLResponse, name=f"{kind}_frame")
    def frame(message_id: IdPath, user: ConsoleUserDep, ctx: ServicesDep) -> HTMLResponse:
        return _frame(raw_of(load(ctx, message_id)))

    @router.get(f"/{kind}/{{message_id}}/message.eml", name=f"{kind}_eml")
    def eml(message_id: IdPath, user: ConsoleUserDep, ctx: ServicesDep) -> Response:
        return _eml(raw_of(load(ctx, message_id)), f"{kind}-{message_id}")


_message_routes("outbox", console.outbox_message, lambda row: row.body, console.outbox_attempts)
_message_routes("inbox", console.inbox_message, lambda row: row.raw)
