"""Request-scoped access to the running system.

The dependencies are ``async def``: FastAPI runs a plain ``def`` dependency on the thread pool,
a hand-off per request that costs more than these look-ups.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from mailflow.bootstrap import System
from mailflow.schemas import MAX_ID
from mailflow.services.context import ServiceContext


async def get_system(request: Request) -> System:
    return request.app.state.system  # type: ignore[no-any-return]


async def get_services(request: Request) -> ServiceContext:
    return request.app.state.system.services  # type: ignore[no-any-return]


SystemDep = Annotated[System, Depends(get_system)]
ServicesDep = Annotated[ServiceContext, Depends(get_services)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
