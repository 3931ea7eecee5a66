"""HEAD for every GET: the same status and headers, no body.

FastAPI's routes answer only the methods they declare, so ``curl -I`` and uptime monitors got 405
from every page. Starlette's own routes add HEAD to GET; this does the same for the whole app,
outside every middleware of ours (Starlette's ServerErrorMiddleware still wraps it), so the
answer is the GET's own, its Content-Length included.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        # A copy: the server's own scope stays HEAD (uvicorn then writes no body either).
        await self.app({**scope, "method": "GET"}, receive, send_without_body)
