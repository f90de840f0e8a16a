"""``[server] max_body_bytes``: a request body larger than this is answered 413 before anything
parses it.

A pure ASGI middleware: a ``Content-Length`` over the limit is refused at once, without
reading; a body sent without one (chunked) is read from the stream up to the limit and refused
as soon as it goes past. A body within the limit is handed on to the app unchanged.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE = "too_large"


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        if length is None and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        chunks: list[bytes] = []
        size = 0
        last: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                last = message  # the client went away: the app learns it when it reads
                break
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), last, receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body is larger than {self.max_bytes} bytes (server.max_body_bytes)"
        response: Response
        if scope["path"].startswith("/api/"):
            body = {"error": TOO_LARGE, "message": message}
            response = JSONResponse(body, status_code=413, headers={"Connection": "close"})
        else:
            response = PlainTextResponse(message, 413, headers={"Connection": "close"})
        await response(scope, receive, send)


def _replay(body: bytes, last: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that gives the body read already, then whatever the client sends next."""
    given = False

    async def again() -> Message:
        nonlocal given
        if not given:
            given = True
            if last is not None:
                return last
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
