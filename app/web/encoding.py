"""Accept-Encoding read as RFC 9110 (12.5.3) says: a coding with ``q=0`` is refused.

Starlette's GZipMiddleware gzips whenever the header contains the letters "gzip", so
``gzip;q=0`` ("anything but gzip") still got gzip. Here gzip is sent only when its own quality,
or failing that the quality of ``*``, is above zero.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.gzip import GZipMiddleware, GZipResponder, IdentityResponder
from starlette.types import ASGIApp, Receive, Scope, Send

from app.web.negotiation import quality_of


def gzip_accepted(header: str | None) -> bool:
    """Whether a response may be gzipped for this Accept-Encoding (None: no header, identity)."""
    if not header:
        return False
    codings: dict[str, float] = {}
    for item in header.split(","):
        name, *params = item.split(";")
        coding = name.strip().lower()
        if coding:
            codings[coding] = quality_of(params)
    for coding in ("gzip", "x-gzip", "*"):
        if coding in codings:
            return codings[coding] > 0
    return False


class NegotiatedGZipMiddleware(GZipMiddleware):
    """Starlette's GZipMiddleware, gzipping only where ``gzip_accepted`` says so."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        responder: ASGIApp
        if gzip_accepted(Headers(scope=scope).get("accept-encoding")):
            responder = GZipResponder(
                self.app,
                self.minimum_size,
                compresslevel=self.compresslevel,
                thread_minimum_size=self.thread_minimum_size,
                exclude_content_types=self.exclude_content_types,
            )
        else:
            responder = IdentityResponder(
                self.app, self.minimum_size, exclude_content_types=self.exclude_content_types
            )
        await responder(scope, receive, send)
