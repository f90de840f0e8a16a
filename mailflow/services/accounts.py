"""Who may use the web pages: console users (password) and sellers (emailed login links).

Console passwords are hashed with Argon2id (memory-hard). A seller's login link is a signed
token naming a one-time nonce kept in the database: it works once, for 15 minutes, and the
request for one answers the same whether the address is known or not.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import TypeAdapter, ValidationError

from mailflow.domain.events import LoginLinkRequested
from mailflow.links import ExpiredLink, InvalidLink
from mailflow.schemas import Email
from mailflow.services.context import ServiceContext
from mailflow.services.dispatch import dispatch
from mailflow.services.errors import Conflict, InvalidInput
from mailflow.store.logins import UserRecord

LOGIN_LINK_MINUTES = 15
MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()
# Verified when the email is unknown, so that both answers take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class Role(StrEnum):
    ADMIN = "admin"
    SUPPORT = "support"


@dataclass(frozen=True)
class ConsoleUser:
    id: int
    email: str
    role: Role

    @property
    def can_edit_templates(self) -> bool:
        return self.role is Role.ADMIN


class LoginFailed(Exception):
    """A login that cannot be honoured; the message is safe to show."""


_email = TypeAdapter(Email)


def normalized_email(value: str) -> str | None:
    """The address as console users are stored and looked up (case-folded), or None."""
    try:
        return _email.validate_python(value.strip()).casefold()
    except ValidationError:
        return None


def create_user(ctx: ServiceContext, email: str, role: str, password: str) -> ConsoleUser:
    address = normalized_email(email)
    if address is None:
        raise InvalidInput("email", "not a valid email address")
    email = address
    if role not in Role.__members__.values():
        raise InvalidInput("role", "must be admin or support")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    with ctx.db.transaction() as session:
        if ctx.logins.user_by_email(session, email) is not None:
            raise Conflict(f"a user {email} exists already", code="user_exists")
        user = ctx.logins.add_user(session, email, role, _hasher.hash(password), ctx.clock())
        return _console_user(user)


def _console_user(user: UserRecord) -> ConsoleUser:
    return ConsoleUser(user.id, user.email, Role(user.role))


def authenticate(ctx: ServiceContext, email: str, password: str) -> ConsoleUser | None:
    with ctx.db.read() as session:
        user = ctx.logins.user_by_email(session, normalized_email(email) or "")
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return None if user is None else _console_user(user)


def console_user(ctx: ServiceContext, user_id: int) -> ConsoleUser | None:
    with ctx.db.read() as session:
        user = ctx.logins.user(session, user_id)
    return None if user is None else _console_user(user)


def request_login_link(ctx: ServiceContext, email: str) -> None:
    """Email a one-time login link to the seller with this address, if there is one."""
    address = normalized_email(email)
    if address is None:
        return
    now = ctx.clock()
    with ctx.db.transaction() as session:
        # Addresses are compared without case: people type them as they like.
        for seller in ctx.logins.sellers_by_email(session, address):
            nonce = secrets.token_urlsafe(24)
            expires = now + timedelta(minutes=LOGIN_LINK_MINUTES)
            ctx.logins.add_link(session, nonce, seller.id, now, expires)
            event = LoginLinkRequested(seller.id, nonce, LOGIN_LINK_MINUTES, now)
            dispatch(ctx, session, (event,), seller)


def check_login_link(ctx: ServiceContext, token: str) -> int:
    """The seller a login link is for, without using it (the GET a mail scanner makes)."""
    try:
        seller_id, _nonce = ctx.signer.verify_login_token(token, LOGIN_LINK_MINUTES * 60)
    except ExpiredLink as exc:
        raise LoginFailed("expired") from exc
    except InvalidLink as exc:
        raise LoginFailed("invalid") from exc
    return seller_id


def use_login_link(ctx: ServiceContext, token: str) -> int:
    """Spend a login link (once): the seller it logs in."""
    try:
        seller_id, nonce = ctx.signer.verify_login_token(token, LOGIN_LINK_MINUTES * 60)
    except ExpiredLink as exc:
        raise LoginFailed("expired") from exc
    except InvalidLink as exc:
        raise LoginFailed("invalid") from exc
    now = ctx.clock()
    with ctx.db.transaction() as session:
        used = ctx.logins.use_link(session, nonce, seller_id, now)
    if not used:
        raise LoginFailed("used")
    return seller_id
