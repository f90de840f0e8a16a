"""Action links, ``/s/<token>``: GET shows a confirmation page and changes nothing (mail
scanners fetch links); POST acts (the page's button, or a direct RFC 8058-style POST).

Answers: done 200; already done 200 saying so; impossible 409 with what to do instead;
bad signature 400; expired 410 with a login link; unknown sale 404. Every answer is a page in
the seller's language.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from mailflow import i18n
from mailflow.bootstrap import System
from mailflow.domain.sales import (
    Action,
    Actor,
    AlreadyDone,
    Channel,
    IllegalTransition,
    Reason,
    SaleStatus,
    allowed_actions,
    plan,
)
from mailflow.links import ExpiredLink, InvalidLink, SaleLink
from mailflow.services import sales
from mailflow.services.errors import Conflict, NotFound
from mailflow.store.models import Sale, Seller
from mailflow.web.pages import Pages

router = APIRouter(include_in_schema=False)

LINK_ACTIONS = {"accept": Action.ACCEPT, "refuse": Action.REFUSE}


def _pages(request: Request) -> Pages:
    return request.app.state.pages  # type: ignore[no-any-return]


def _system(request: Request) -> System:
    return request.app.state.system  # type: ignore[no-any-return]


def _browser_locale(request: Request) -> str | None:
    header = request.headers.get("accept-language", "")
    return header.split(",")[0].split(";")[0].strip() or None


class _Stop(Exception):
    def __init__(self, response: HTMLResponse) -> None:
        self.response = response


def _resolve(request: Request, token: str) -> tuple[SaleLink, Sale, Seller]:
    system, pages = _system(request), _pages(request)
    locale = _browser_locale(request)
    try:
        link = system.signer.verify_sale_token(token)
    except ExpiredLink as expired:
        # The signature is genuine, so the sale it names tells the seller's language.
        locale = _seller_locale(system, expired.payload) or locale
        login = f"{system.settings.server.base_url}/seller/login"
        raise _Stop(pages.render("expired.html.j2", locale, 410, login_url=login)) from None
    except InvalidLink:
        raise _Stop(pages.render("invalid.html.j2", locale, 400)) from None
    with system.db.read() as session:
        sale = session.get(Sale, link.sale_id)
        seller = session.get(Seller, sale.seller_id) if sale else None
    if sale is None or seller is None:
        raise _Stop(pages.render("notfound.html.j2", locale, 404))
    return link, sale, seller


def _seller_locale(system: System, payload: object) -> str | None:
    sale_id = payload.get("s") if isinstance(payload, dict) else None
    if not isinstance(sale_id, int):
        return None
    with system.db.read() as session:
        sale = session.get(Sale, sale_id)
        seller = session.get(Seller, sale.seller_id) if sale else None
    return seller.locale if seller else None


def _sale_facts(system: System, sale: Any) -> dict[str, Any]:
    deadline = sale.created_at + timedelta(hours=system.settings.policy.acceptance_deadline_hours)
    return {"sale": sale, "deadline": deadline}


def _view(request: Request, sale: Sale, seller: Seller) -> HTMLResponse:
    system = _system(request)
    assert sale.id is not None
    buttons = [
        {"action": a.value, "url": f"/s/{system.signer.sale_token(sale.id, a.value)}"}
        for a in allowed_actions(SaleStatus(sale.status))
        if a.value in LINK_ACTIONS
    ]
    return _pages(request).render(
        "view.html.j2", seller.locale, buttons=buttons, **_sale_facts(system, sale)
    )


def _already(request: Request, sale: Any, seller: Any) -> HTMLResponse:
    return _pages(request).render(
        "already.html.j2",
        seller.locale,
        since=sale.updated_at,
        **_sale_facts(_system(request), sale),
    )


def _impossible(request: Request, sale: Any, seller: Any, action: Action) -> HTMLResponse:
    hint = i18n.hint_for(action, SaleStatus(sale.status), seller.locale)
    return _pages(request).render(
        "conflict.html.j2", seller.locale, 409, hint=hint, **_sale_facts(_system(request), sale)
    )


@router.get("/s/{token}", response_class=HTMLResponse)
def show(request: Request, token: str) -> HTMLResponse:
    try:
        link, sale, seller = _resolve(request, token)
    except _Stop as stop:
        return stop.response
    if link.action == "view":
        return _view(request, sale, seller)
    action = LINK_ACTIONS[link.action]
    try:
        plan(action, SaleStatus(sale.status))
    except AlreadyDone:
        return _already(request, sale, seller)
    except IllegalTransition:
        return _impossible(request, sale, seller, action)
    return _pages(request).render(
        "confirm.html.j2",
        seller.locale,
        action=link.action,
        reasons=[r.value for r in Reason],
        **_sale_facts(_system(request), sale),
    )


@router.post("/s/{token}", response_class=HTMLResponse)
async def act(request: Request, token: str) -> HTMLResponse:
    reason = Reason.OUT_OF_STOCK
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        raw = form.get("reason")
        if isinstance(raw, str) and raw:
            if raw not in Reason.__members__.values():
                return _pages(request).render("invalid.html.j2", _browser_locale(request), 422)
            reason = Reason(raw)
    return await run_in_threadpool(_act, request, token, reason)


def _act(request: Request, token: str, reason: Reason) -> HTMLResponse:
    system, pages = _system(request), _pages(request)
    try:
        link = system.signer.verify_sale_token(token)
    except (ExpiredLink, InvalidLink):
        link = None
    if link is None or link.action == "view":
        # Bad and expired links, and a POST to a "view" link, answer as their GET does.
        try:
            link, sale, seller = _resolve(request, token)
        except _Stop as stop:
            return stop.response
        return _view(request, sale, seller)
    action = LINK_ACTIONS[link.action]
    try:
        # The transaction reads the sale with its seller: no read of its own before it, and
        # the page shows the sale as the transaction left it.
        outcome = sales.transition(
            system.services,
            link.sale_id,
            action,
            actor=Actor.SELLER,
            channel=Channel.EMAIL_LINK,
            reason=reason if action is Action.REFUSE else None,
            view=False,
        )
    except NotFound:
        return pages.render("notfound.html.j2", _browser_locale(request), 404)
    except Conflict:
        try:
            _, fresh, seller = _resolve(request, token)
        except _Stop as stop:
            return stop.response
        return _impossible(request, fresh, seller, action)
    assert outcome.facts is not None
    fresh, seller = outcome.facts.sale, outcome.facts.seller
    if not outcome.changed:
        return _already(request, fresh, seller)
    return pages.render(
        "done.html.j2", seller.locale, action=link.action, **_sale_facts(system, fresh)
    )
