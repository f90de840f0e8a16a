"""``HEAD`` on every ``GET`` route: answered as the ``GET`` would be, without the body.

FastAPI routes answer only the methods they name, so ``HEAD /healthz`` would be 405. This
middleware routes a ``HEAD`` as a ``GET`` and drops the body it sends (the headers, the length
included, stay). On an action link a ``GET`` changes nothing, so neither does a ``HEAD``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # Changed in place: the router writes the matched route into this same scope, which
        # the access log reads.
        scope["method"] = "GET"

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        try:
            await self.app(scope, receive, without_body)
        finally:
            scope["method"] = "HEAD"
