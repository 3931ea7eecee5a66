"""Two built-in nets aligned stage by stage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.core.compare import Comparison, to_csv
from app.web.catalog import comparison
from app.web.deps import TableFormat
from app.web.errors import error_responses
from app.web.responses import csv_download

router = APIRouter(prefix="/api", tags=["compare"])

NetA = Annotated[str, Query(description="the first net's id", examples=["alexnet-lecture"])]
NetB = Annotated[str, Query(description="the second net's id", examples=["zfnet-lecture"])]


@router.get(
    "/compare",
    summary="Both tables aligned stage by stage, with what changed and the totals' differences",
    response_model=Comparison,
    responses={
        **error_responses(404, 422),
        200: {"content": {"text/csv": {}}, "description": "the comparison (JSON, or CSV)"},
    },
)
def compare_nets(a: NetA, b: NetB, format: TableFormat = "json") -> Response:
    result = comparison(a, b)
    if format == "csv":
        return csv_download(to_csv(result), f"{a}-vs-{b}.csv")
    return Response(result.model_dump_json(), media_type="application/json")
