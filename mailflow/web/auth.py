"""Bearer tokens for the JSON API (``[api] tokens``)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from mailflow.web.deps import system_of

bearer = HTTPBearer(auto_error=False, description="A token from `[api] tokens`.")


UNAUTHORIZED = {"error": "unauthorized", "message": "missing or wrong bearer token"}
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def token_ok(authorization: str | None, tokens: list[str]) -> bool:
    """Whether an ``Authorization`` header carries one of ``tokens`` as a bearer token."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    given = given.strip()
    # Compare against every token, always, so timing tells nothing about which is close.
    ok = False
    for token in tokens:
        ok |= hmac.compare_digest(given.encode(), token.encode())
    return ok


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    tokens = system_of(request).settings.api.tokens
    if not token_ok(request.headers.get("authorization"), tokens):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED, detail=UNAUTHORIZED, headers=CHALLENGE
        )


class ApiAuthMiddleware:
    """Checks the token of ``/api/`` requests before anything reads their body, so a caller
    without a valid token learns nothing about how its request would have been parsed."""

    def __init__(self, app: ASGIApp, tokens: list[str]) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            headers = dict(scope["headers"])
            raw = headers.get(b"authorization")
            if not token_ok(raw.decode("latin-1") if raw else None, self.tokens):
                response = JSONResponse(UNAUTHORIZED, status_code=401, headers=CHALLENGE)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


Authenticated = Depends(require_token)
