"""What a route needs from the request: the running system, the services, the pages, the
signed-in seller and the signed-in console user with a role. The one place that knows where
the app keeps them.

The dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency
on the thread pool, a hand-off per request that costs more than they do. The two that read
the database (``maybe_seller``, ``maybe_console_user``) are plain ``def``, run on the thread
pool, so that they never block the event loop.

A missing sign-in or role raises: the seller pages answer ``SellerLoginRequired`` with the
login page, the console's route class answers ``ConsoleLoginRequired`` and ``NotAllowed``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from mailflow.bootstrap import System
from mailflow.schemas import MAX_ID
from mailflow.services import accounts, portal
from mailflow.services.accounts import ConsoleUser, Role, SessionKind
from mailflow.services.context import ServiceContext
from mailflow.services.portal import SellerInfo
from mailflow.web.pages import Pages
from mailflow.web.session import form_with_csrf

SESSION_SELLER = "seller_session"
SESSION_CONSOLE_USER = "console_session"
"""The session keys holding the token of a seller's or a console user's server-side session."""


def system_of(request: Request) -> System:
    return request.app.state.system  # type: ignore[no-any-return]


def services_of(request: Request) -> ServiceContext:
    return system_of(request).services


def pages_of(request: Request) -> Pages:
    return request.app.state.pages  # type: ignore[no-any-return]


async def get_system(request: Request) -> System:
    return system_of(request)


async def get_services(request: Request) -> ServiceContext:
    return services_of(request)


async def get_pages(request: Request) -> Pages:
    return pages_of(request)


SystemDep = Annotated[System, Depends(get_system)]
ServicesDep = Annotated[ServiceContext, Depends(get_services)]
PagesDep = Annotated[Pages, Depends(get_pages)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
CsrfForm = Annotated[dict[str, Any], Depends(form_with_csrf)]
"""The submitted form, once its CSRF token has been checked. Declared before the signed-in
person, so that a form without its token is refused before anything else is looked at."""


# The seller ----------------------------------------------------------------------------------


class SellerLoginRequired(Exception):
    """No seller is signed in (or the seller is gone)."""


def maybe_seller(request: Request, services: ServicesDep) -> SellerInfo | None:
    """The signed-in seller, if any; a session that has ended (signed out, expired) or names
    a seller that is gone is forgotten."""
    token = request.session.get(SESSION_SELLER)
    if token is None:
        return None
    seller_id = accounts.session_subject(services, token, SessionKind.SELLER)
    seller = None if seller_id is None else portal.seller_info(services, seller_id)
    if seller is None:
        request.session.pop(SESSION_SELLER, None)
    return seller


async def signed_in_seller(
    seller: Annotated[SellerInfo | None, Depends(maybe_seller)],
) -> SellerInfo:
    if seller is None:
        raise SellerLoginRequired
    return seller


MaybeSellerDep = Annotated[SellerInfo | None, Depends(maybe_seller)]
SellerDep = Annotated[SellerInfo, Depends(signed_in_seller)]


# The console user ---------------------------------------------------------------------------


class ConsoleLoginRequired(Exception):
    """Nobody is signed in to the console (or the account is gone)."""


class NotAllowed(Exception):
    """The signed-in user's role cannot do this: ``what`` names what it is kept for."""

    def __init__(self, what: str, role: Role) -> None:
        super().__init__(f"{what}: not for {role.value}")
        self.what = what
        self.role = role


def maybe_console_user(request: Request, services: ServicesDep) -> ConsoleUser | None:
    token = request.session.get(SESSION_CONSOLE_USER)
    user_id = accounts.session_subject(services, token, SessionKind.CONSOLE)
    user = None if user_id is None else accounts.console_user(services, user_id)
    if user is None:
        request.session.pop(SESSION_CONSOLE_USER, None)
    # Kept for the pages: the menu and the header show who is signed in.
    request.state.console_user = user
    return user


async def console_user(
    user: Annotated[ConsoleUser | None, Depends(maybe_console_user)],
) -> ConsoleUser:
    if user is None:
        raise ConsoleLoginRequired
    return user


def require_role(
    role: Role, what: str
) -> Callable[[ConsoleUser], Coroutine[Any, Any, ConsoleUser]]:
    """A dependency: the signed-in console user, who must have ``role`` to use ``what``."""

    async def with_role(user: Annotated[ConsoleUser, Depends(console_user)]) -> ConsoleUser:
        if user.role is not role:
            raise NotAllowed(what, user.role)
        return user

    return with_role


MaybeConsoleUserDep = Annotated[ConsoleUser | None, Depends(maybe_console_user)]
ConsoleUserDep = Annotated[ConsoleUser, Depends(console_user)]
AdminDep = Annotated[ConsoleUser, Depends(require_role(Role.ADMIN, "templates"))]
