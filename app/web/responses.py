"""Response helpers shared by routers."""

from __future__ import annotations

import gzip
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from app.core.formatting import to_csv
from app.core.table import Table

GZIP_LEVEL = 9


@dataclass(frozen=True)
class Encoded:
    """A body made once (a table's JSON, a rendered page) and its gzip, both served as they are:
    no request serializes or compresses it again."""

    plain: bytes
    gzipped: bytes

    @classmethod
    def of(cls, body: bytes) -> Encoded:
        # mtime=0: the same body is the same gzip bytes, whenever it was made.
        return cls(body, gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0))


def accepts_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "")


def encoded_response(body: Encoded, media_type: str, request: Request) -> Response:
    """The gzip where the client takes it (GZipMiddleware passes an encoded body through), else
    the plain body (to which the middleware adds ``Vary: Accept-Encoding`` itself)."""
    if accepts_gzip(request):
        headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return Response(body.gzipped, media_type=media_type, headers=headers)
    return Response(body.plain, media_type=media_type)


def csv_download(text: str, filename: str) -> Response:
    """A CSV attachment; ``filename`` is ours (an id), never user text."""
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def table_response(table: Table, format: str, filename: str) -> Response:
    if format == "csv":
        return csv_download(to_csv(table), filename)
    return Response(table.model_dump_json(), media_type="application/json")
