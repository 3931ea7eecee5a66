"""Security headers on every response: a strict Content-Security-Policy for the pages and the API.

The pages run no inline script and no eval (Plotly's partial bundles need neither), so
``script-src 'self'`` holds. Plotly sets inline styles, hence ``style-src 'unsafe-inline'``; its
PNG export draws through data: and blob: images. Only the Swagger UI at /docs, whose start-up
script FastAPI writes inline, gets ``script-src 'unsafe-inline'``.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
DOCS_POLICY = PAGE_POLICY.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def policy_for(path: str) -> str:
    return DOCS_POLICY if path == "/docs" else PAGE_POLICY


class SecurityHeadersMiddleware:
    """Pure ASGI, so it also covers error responses and streamed bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = policy_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = policy
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SecuredFastAPI(FastAPI):
    """FastAPI with the security headers outside everything, Starlette's ServerErrorMiddleware
    included: that middleware is always the outermost of a Starlette app's own stack and writes
    the 500 of an unhandled error itself, so a header middleware added the usual way never sees
    that answer."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(super().build_middleware_stack())
