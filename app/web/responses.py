"""Response helpers shared by routers."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from app.core.formatting import to_csv
from app.core.table import Table
from app.web.caching import REVALIDATE, content_hash, etag, matches
from app.web.encoding import gzip_accepted

GZIP_LEVEL = 9
CSV = "text/csv; charset=utf-8"
JSON = "application/json"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Encoded:
    """A body made once (a table's JSON, a rendered page) with its gzip and its content hash,
    served as they are: no request serializes, compresses or hashes it again. A page keeps
    only its gzip (``kept_plain`` None): the rare client without gzip gets it unzipped."""

    gzipped: bytes
    digest: str
    kept_plain: bytes | None = None

    @classmethod
    def of(cls, body: bytes, *, keep_plain: bool = True) -> Encoded:
        # mtime=0: the same body is the same gzip bytes, whenever it was made.
        gzipped = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        return cls(gzipped, content_hash(body), body if keep_plain else None)

    @property
    def plain(self) -> bytes:
        return self.kept_plain if self.kept_plain is not None else gzip.decompress(self.gzipped)


def accepts_gzip(request: Request) -> bool:
    return gzip_accepted(request.headers.get("accept-encoding"))


def encoded_response(
    body: Encoded,
    media_type: str,
    request: Request,
    *,
    vary: Sequence[str] = ("Accept-Encoding",),
    headers: dict[str, str] | None = None,
) -> Response:
    """The gzip where the client takes it (GZipMiddleware passes an encoded body through), else
    the plain body; each with its ETag, and 304 with no body when If-None-Match names it."""
    gzipped = accepts_gzip(request)
    tag = etag(body.digest, gzipped=gzipped)
    head = {"ETag": tag, "Cache-Control": REVALIDATE, "Vary": ", ".join(vary), **(headers or {})}
    if matches(request.headers, tag):
        head.pop("Content-Disposition", None)
        return Response(status_code=304, headers=head)
    if gzipped:
        return Response(
            body.gzipped, media_type=media_type, headers={**head, "Content-Encoding": "gzip"}
        )
    return Response(body.plain, media_type=media_type, headers=head)


def attachment(filename: str) -> dict[str, str]:
    """A download's header; ``filename`` is ours (an id), never user text."""
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def csv_download(text: str, filename: str) -> Response:
    """A CSV attachment made for this request only (a user's spec)."""
    return Response(text, media_type=CSV, headers=attachment(filename))


def table_response(table: Table, format: str, filename: str) -> Response:
    if format == "csv":
        return csv_download(to_csv(table), filename)
    return Response(table.model_dump_json(), media_type=JSON)
