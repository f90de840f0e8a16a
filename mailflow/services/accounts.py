"""Who may use the web pages: console users (password) and sellers (emailed login links).

A signed-in browser holds a random session token; the database keeps its SHA-256 with who it
is for and until when (8 hours). Signing out deletes that record, so a copy of the cookie
taken before is worth nothing; "sign out everywhere" and a password change delete every
record of the person. Console passwords are hashed with Argon2id (memory-hard). A seller's
login link is a signed token naming a one-time nonce kept in the database: it works once,
for 15 minutes, and the request for one answers the same whether the address is known or
not.
"""

from __future__ import annotations

import hashlib
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
from mailflow.services.errors import Conflict, InvalidInput, NotFound
from mailflow.store.logins import UserRecord

LOGIN_LINK_MINUTES = 15
SESSION_HOURS = 8
MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()
# Verified when the email is unknown, so that both answers take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class SessionKind(StrEnum):
    CONSOLE = "console"
    SELLER = "seller"


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


def set_password(ctx: ServiceContext, email: str, password: str) -> int:
    """A console user's new password; every session of the user ends: how many did."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    with ctx.db.transaction() as session:
        user = ctx.logins.user_by_email(session, normalized_email(email) or "")
        if user is None:
            raise NotFound(f"no console user {email}")
        ctx.logins.set_password(session, user.id, _hasher.hash(password))
        return ctx.logins.end_sessions(session, SessionKind.CONSOLE.value, user.id)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(ctx: ServiceContext, kind: SessionKind, subject_id: int) -> str:
    """A new signed-in browser for the console user or seller: the token its cookie keeps."""
    token = secrets.token_urlsafe(32)
    now = ctx.clock()
    expires = now + timedelta(hours=SESSION_HOURS)
    with ctx.db.transaction() as session:
        ctx.logins.add_session(session, _digest(token), kind.value, subject_id, now, expires)
    return token


def session_subject(ctx: ServiceContext, token: object, kind: SessionKind) -> int | None:
    """The console user or seller a session token is for, while the session lasts."""
    if not isinstance(token, str) or not token:
        return None
    with ctx.db.read() as session:
        return ctx.logins.session_subject(session, _digest(token), kind.value, ctx.clock())


def end_session(ctx: ServiceContext, token: object) -> None:
    """Sign one browser out: every copy of its cookie ends."""
    if isinstance(token, str) and token:
        with ctx.db.transaction() as session:
            ctx.logins.end_session(session, _digest(token))


def end_sessions(ctx: ServiceContext, kind: SessionKind, subject_id: int) -> int:
    """Sign the person out everywhere: how many sessions ended."""
    with ctx.db.transaction() as session:
        return ctx.logins.end_sessions(session, kind.value, subject_id)


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


def issue_login_link(ctx: ServiceContext, seller_id: int) -> str:
    """A one-time login link for the seller, returned instead of emailed (``serve --demo``
    prints one per demo seller)."""
    nonce = secrets.token_urlsafe(24)
    now = ctx.clock()
    with ctx.db.transaction() as session:
        ctx.logins.add_link(
            session, nonce, seller_id, now, now + timedelta(minutes=LOGIN_LINK_MINUTES)
        )
    return f"{ctx.base_url}/seller/login/{ctx.signer.login_token(seller_id, nonce)}"


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
