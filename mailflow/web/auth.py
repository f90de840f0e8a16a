"""Bearer tokens for the JSON API (``[api] tokens``)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

bearer = HTTPBearer(auto_error=False, description="A token from `[api] tokens`.")


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    tokens: list[str] = request.app.state.system.settings.api.tokens
    given = credentials.credentials if credentials else ""
    # Compare against every token, always, so timing tells nothing about which is close.
    ok = False
    for token in tokens:
        ok |= hmac.compare_digest(given.encode(), token.encode())
    if not given or not ok:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


Authenticated = Depends(require_token)
