"""Action links, ``/s/<token>``: GET shows a confirmation page and changes nothing (mail
scanners fetch links); POST acts (the page's button, or a direct RFC 8058-style POST).

Answers: done 200; already done 200 saying so; impossible 409 with what to do instead;
bad signature 400; expired 410 with a login link; unknown sale 404. Every answer is a page in
the seller's language. What a link would do is asked of ``services.actions.preview``; the
click is ``services.actions.act``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from mailflow import i18n
from mailflow.bootstrap import System
from mailflow.links import ExpiredLink, InvalidLink, SaleLink
from mailflow.services import actions
from mailflow.services.actions import Action, ActionPreview, Hint, Reason, SaleSummary
from mailflow.services.errors import NotFound
from mailflow.web.deps import PagesDep, SystemDep
from mailflow.web.pages import Pages, browser_locale

router = APIRouter(include_in_schema=False)

LINK_ACTIONS = {"accept": Action.ACCEPT, "refuse": Action.REFUSE}


class _Stop(Exception):
    def __init__(self, response: HTMLResponse) -> None:
        self.response = response


def _resolve(
    request: Request, system: System, pages: Pages, token: str
) -> tuple[SaleLink, ActionPreview]:
    """The link and what its action would do now, or the page that answers instead."""
    locale = browser_locale(request)
    try:
        link = system.signer.verify_sale_token(token)
    except ExpiredLink as expired:
        # The signature is genuine, so the sale it names tells the seller's language.
        locale = _seller_locale(system, expired.payload) or locale
        login = f"{system.settings.server.base_url}/seller/login"
        raise _Stop(pages.render("expired.html.j2", locale, 410, login_url=login)) from None
    except InvalidLink:
        raise _Stop(pages.render("invalid.html.j2", locale, 400)) from None
    try:
        preview = actions.preview(system.services, link.sale_id, LINK_ACTIONS.get(link.action))
    except NotFound:
        raise _Stop(pages.render("notfound.html.j2", locale, 404)) from None
    return link, preview


def _seller_locale(system: System, payload: object) -> str | None:
    sale_id = payload.get("s") if isinstance(payload, dict) else None
    if not isinstance(sale_id, int):
        return None
    return actions.seller_locale(system.services, sale_id)


def _view(system: System, pages: Pages, preview: ActionPreview) -> HTMLResponse:
    sale = preview.sale
    buttons = [
        {"action": a.value, "url": f"/s/{system.signer.sale_token(sale.record.id, a.value)}"}
        for a in preview.link_actions
    ]
    return pages.render(
        "view.html.j2", preview.locale, buttons=buttons, sale=sale.record, deadline=sale.deadline
    )


def _already(pages: Pages, sale: SaleSummary, locale: str) -> HTMLResponse:
    return pages.render(
        "already.html.j2",
        locale,
        since=sale.record.updated_at,
        sale=sale.record,
        deadline=sale.deadline,
    )


def _impossible(pages: Pages, sale: SaleSummary, locale: str, hint: Hint) -> HTMLResponse:
    words = i18n.hint_for(hint.action, hint.status, locale)
    return pages.render(
        "conflict.html.j2", locale, 409, hint=words, sale=sale.record, deadline=sale.deadline
    )


@router.get("/s/{token}", response_class=HTMLResponse)
def show(request: Request, token: str, system: SystemDep, pages: PagesDep) -> HTMLResponse:
    try:
        link, preview = _resolve(request, system, pages, token)
    except _Stop as stop:
        return stop.response
    sale = preview.sale
    if link.action == "view":
        return _view(system, pages, preview)
    if preview.already_done:
        return _already(pages, sale, preview.locale)
    if preview.hint is not None:
        return _impossible(pages, sale, preview.locale, preview.hint)
    return pages.render(
        "confirm.html.j2",
        preview.locale,
        action=link.action,
        reasons=[r.value for r in Reason],
        sale=sale.record,
        deadline=sale.deadline,
    )


@router.post("/s/{token}", response_class=HTMLResponse)
async def act(request: Request, token: str, system: SystemDep, pages: PagesDep) -> HTMLResponse:
    reason = Reason.OUT_OF_STOCK
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        raw = form.get("reason")
        if isinstance(raw, str) and raw:
            if raw not in Reason.__members__.values():
                return pages.render("invalid.html.j2", browser_locale(request), 422)
            reason = Reason(raw)
    return await run_in_threadpool(_act, request, system, pages, token, reason)


def _act(
    request: Request, system: System, pages: Pages, token: str, reason: Reason
) -> HTMLResponse:
    try:
        link = system.signer.verify_sale_token(token)
    except (ExpiredLink, InvalidLink):
        link = None
    if link is None or link.action == "view":
        # Bad and expired links, and a POST to a "view" link, answer as their GET does.
        try:
            _, preview = _resolve(request, system, pages, token)
        except _Stop as stop:
            return stop.response
        return _view(system, pages, preview)
    try:
        outcome = actions.act(system.services, link.sale_id, LINK_ACTIONS[link.action], reason)
    except NotFound:
        return pages.render("notfound.html.j2", browser_locale(request), 404)
    sale = outcome.sale
    if outcome.hint is not None:
        return _impossible(pages, sale, outcome.locale, outcome.hint)
    if not outcome.changed:
        return _already(pages, sale, outcome.locale)
    return pages.render(
        "done.html.j2", outcome.locale, action=link.action, sale=sale.record, deadline=sale.deadline
    )
