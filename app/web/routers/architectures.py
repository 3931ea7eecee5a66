"""The built-in nets: summaries, specs and layer tables."""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import TypeAdapter

from app.core.calculator import builtin_table
from app.core.formatting import to_csv
from app.core.table import Table
from app.specs import Spec, builtin_registry
from app.web.caching import NOT_MODIFIED
from app.web.catalog import NetSummary, summaries_now, table_encoded, weights_key
from app.web.deps import NetId, SettingsDep, TableFormat
from app.web.errors import error_responses
from app.web.responses import CSV, JSON, Encoded, attachment, encoded_response

router = APIRouter(prefix="/api/architectures", tags=["architectures"])

SUMMARIES = TypeAdapter(list[NetSummary])
# One body per state of the model repository's weights: a build that finishes changes it.
SUMMARY_BODIES = 8


@lru_cache(maxsize=SUMMARY_BODIES)
def _summaries_body(models_dir: Path, state: tuple[str, ...]) -> Encoded:
    del state  # the cache key: what every net's model serves now
    return Encoded.of(SUMMARIES.dump_json(summaries_now(models_dir)))


@cache
def _spec_body(net_id: str) -> Encoded:
    return Encoded.of(builtin_registry().get(net_id).model_dump_json().encode("utf-8"))


@cache
def _table_csv(net_id: str) -> Encoded:
    return Encoded.of(to_csv(builtin_table(net_id)).encode("utf-8"))


@router.get(
    "",
    summary="One summary per built-in net, with the weights its model serves now",
    response_model=list[NetSummary],
    responses=NOT_MODIFIED,
)
async def list_architectures(request: Request, settings: SettingsDep) -> Response:
    """Every built-in net with its input, totals (parameters, MACs, depth), its top-5 error as
    what it is (the paper's, the checkpoint's, or none of its own for a lecture net, with the
    source), the checkpoint published for it, if any, and what its built model serves now."""
    models_dir = settings.models_dir
    body = _summaries_body(models_dir, weights_key(models_dir, builtin_registry().ids()))
    return encoded_response(body, JSON, request)


@router.get(
    "/{net_id}",
    summary="A net's spec, as declared",
    response_model=Spec,
    responses={**error_responses(404), **NOT_MODIFIED},
)
async def get_architecture(request: Request, net_id: NetId) -> Response:
    """The declaration every number is computed from: input, layers with their settings, the
    lecture's figures and the published weights, if any."""
    return encoded_response(_spec_body(net_id), JSON, request)  # an unknown id: 404


@router.get(
    "/{net_id}/table",
    summary="A net's layer table (the same JSON as `convatlas table ID --format json`)",
    response_model=Table,
    responses={
        **error_responses(404, 406, 422),
        **NOT_MODIFIED,
        200: {"content": {"text/csv": {}}, "description": "the table (JSON, or CSV)"},
    },
)
async def get_table(request: Request, net_id: NetId, format: TableFormat) -> Response:
    """Per layer: input and output volume, weights, biases, parameters, MACs, activations,
    receptive field and the formulas with the numbers filled in; then the totals. CSV with
    `?format=csv` or `Accept: text/csv`."""
    # async: the table is computed, serialized and compressed once, then served as those bytes
    # with no hop to a worker thread (the hop alone cost about half of this route's time).
    vary = ("Accept", "Accept-Encoding")
    if format == "csv":
        body, headers = _table_csv(net_id), attachment(f"{net_id}.csv")
        return encoded_response(body, CSV, request, vary=vary, headers=headers)
    return encoded_response(table_encoded(net_id), JSON, request, vary=vary)
