"""HTTP caching: strong ETags, Cache-Control, 304 on If-None-Match, and Vary said once.

Everything built-in (the pages, every table and spec, the lecture's figures) is made once and
kept with a content hash, so revalidating costs a dictionary lookup and a 304 with no body.
The gzip and the plain body are two representations of one resource, so each has its own strong
ETag (RFC 9110 8.8.3.3): the content hash, with ``-gzip`` for the gzip. Pages and JSON say
``no-cache``: browsers keep them but ask every time, because a page names the content-hashed
URLs of the scripts it loads and must never outlive a deploy. Only those content-hashed static
files are fresh for a year without asking (app/web/assets.py).
"""

from __future__ import annotations

import hashlib
import re

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Kept, but revalidated on every use: a matching ETag gets 304.
REVALIDATE = "no-cache"
# Answers that change from one call to the next (health, readiness, a net's build state).
NO_STORE = "no-store"
HASH_CHARS = 32  # 128 bits of SHA-256: no two bodies this server makes will share one
GZIP_SUFFIX = "-gzip"
# An entity tag in If-None-Match: optionally weak (W/), then a quoted opaque tag.
ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')


def content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:HASH_CHARS]


def etag(digest: str, *, gzipped: bool) -> str:
    """The strong ETag of a body with this content hash, as sent plain or gzipped."""
    return f'"{digest}{GZIP_SUFFIX if gzipped else ""}"'


def matches(request_headers: Headers, current: str) -> bool:
    """Whether If-None-Match names ``current`` (weak comparison, as RFC 9110 13.1.2 says for
    If-None-Match) or is ``*``."""
    header = request_headers.get("if-none-match")
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return current in ENTITY_TAG.findall(header)


class VaryOnceMiddleware:
    """One Vary header naming each field once. GZipMiddleware adds ``Accept-Encoding`` to a
    Vary that a route serving its own gzip (a page, a table) already set, which made
    ``Vary: Accept-Encoding, Accept-Encoding``. Sits directly outside GZipMiddleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_vary_once(message: Message) -> None:
            if message["type"] == "http.response.start":
                _merge_vary(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, send_vary_once)


def _merge_vary(headers: MutableHeaders) -> None:
    values = headers.getlist("vary")
    fields: dict[str, str] = {}
    for value in values:
        for field in (part.strip() for part in value.split(",")):
            if field:
                fields.setdefault(field.lower(), field)
    merged = ", ".join(fields.values())
    if values and values != [merged]:
        del headers["vary"]
        headers["Vary"] = merged


# For `responses=` of a route that answers conditional requests: /docs lists the 304.
NOT_MODIFIED: dict[int | str, dict[str, str]] = {
    304: {"description": "Not Modified: If-None-Match names the current ETag; no body"}
}
