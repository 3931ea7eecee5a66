"""The built-in nets: summaries, specs and layer tables."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.core.calculator import builtin_table
from app.core.formatting import to_csv
from app.core.table import Table
from app.specs import Spec, builtin_registry
from app.web.catalog import NetSummary, summaries_now, table_encoded
from app.web.deps import NetId, SettingsDep, TableFormat
from app.web.errors import error_responses
from app.web.responses import csv_download, encoded_response

router = APIRouter(prefix="/api/architectures", tags=["architectures"])


@router.get(
    "",
    summary="One summary per built-in net, with the weights its model serves now",
)
def list_architectures(settings: SettingsDep) -> list[NetSummary]:
    return summaries_now(settings.models_dir)


@router.get("/{net_id}", summary="A net's spec, as declared", responses=error_responses(404))
def get_architecture(net_id: NetId) -> Spec:
    return builtin_registry().get(net_id)


@router.get(
    "/{net_id}/table",
    summary="A net's layer table (the same JSON as `convatlas table ID --format json`)",
    response_model=Table,
    responses={
        **error_responses(404, 422),
        200: {"content": {"text/csv": {}}, "description": "the table (JSON, or CSV)"},
    },
)
async def get_table(request: Request, net_id: NetId, format: TableFormat = "json") -> Response:
    # async: the table is computed and compressed once, then served as those bytes, with no hop
    # to a worker thread (the hop alone cost about half of this route's time under load).
    if format == "csv":
        return csv_download(to_csv(builtin_table(net_id)), f"{net_id}.csv")
    return encoded_response(table_encoded(net_id), "application/json", request)
