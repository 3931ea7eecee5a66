"""Response helpers shared by routers."""

from __future__ import annotations

from fastapi.responses import Response

from app.core.formatting import to_csv
from app.core.table import Table


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
