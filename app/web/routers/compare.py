"""Two built-in nets aligned stage by stage."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.core.compare import Comparison, to_csv
from app.web.caching import NOT_MODIFIED
from app.web.catalog import comparison
from app.web.deps import TableFormat
from app.web.errors import error_responses
from app.web.responses import CSV, JSON, Encoded, attachment, encoded_response

router = APIRouter(prefix="/api", tags=["compare"])

NetA = Annotated[str, Query(description="the first net's id", examples=["alexnet-lecture"])]
NetB = Annotated[str, Query(description="the second net's id", examples=["zfnet-lecture"])]
# Pairs kept serialized and compressed (13 nets make 169 pairs, each in two formats).
ENCODED_PAIRS = 128


@lru_cache(maxsize=ENCODED_PAIRS)
def _comparison_body(a: str, b: str, format: str) -> Encoded:
    result = comparison(a, b)
    text = to_csv(result) if format == "csv" else result.model_dump_json()
    return Encoded.of(text.encode("utf-8"))


@router.get(
    "/compare",
    summary="Both tables aligned stage by stage, with what changed and the totals' differences",
    response_model=Comparison,
    responses={
        **error_responses(404, 406, 422),
        **NOT_MODIFIED,
        200: {"content": {"text/csv": {}}, "description": "the comparison (JSON, or CSV)"},
    },
)
def compare_nets(request: Request, a: NetA, b: NetB, format: TableFormat) -> Response:
    """The two nets' layers aligned by stage (conv blocks, then the classifier), each setting
    that differs (kernel, stride, filters, units ...), and the differences of every total. CSV
    with `?format=csv` or `Accept: text/csv`."""
    body = _comparison_body(a, b, format)
    vary = ("Accept", "Accept-Encoding")
    if format == "csv":
        headers = attachment(f"{a}-vs-{b}.csv")
        return encoded_response(body, CSV, request, vary=vary, headers=headers)
    return encoded_response(body, JSON, request, vary=vary)
