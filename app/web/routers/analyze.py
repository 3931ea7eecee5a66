"""A user's own spec: validated, limited and computed, or every problem listed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from app.core.errors import SpecInvalid, SpecIssue
from app.core.limits import SpecLimits
from app.core.table import Table
from app.web.catalog import analyze_cached
from app.web.deps import SettingsDep, SpecBody, TableFormat
from app.web.errors import error_responses
from app.web.responses import table_response

router = APIRouter(prefix="/api", tags=["analyze"])

# The smallest useful spec: only name, input and layers are required, every other field takes
# torch's default. /docs shows it, and tests/web/test_openapi.py posts it.
EXAMPLE_SPEC = {
    "name": "tiny",
    "input": {"height": 32, "width": 32, "channels": 3},
    "layers": [
        {"kind": "conv", "name": "c1", "out_channels": 8, "kernel": 3},
        {"kind": "relu"},
        {"kind": "maxpool", "kernel": 2, "stride": 2},
        {"kind": "flatten"},
        {"kind": "linear", "out_features": 10},
    ],
}
# The body is read and parsed by SpecBody (strict JSON, size-limited), so FastAPI does not
# document it by itself; this points /docs at the Spec schema.
SPEC_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/Spec"},
                "example": EXAMPLE_SPEC,
            }
        },
    }
}
# The editor's check takes any JSON, a half-typed spec included, and answers 200 with its
# problems: its body is documented as such, so nothing it accepts reads as a contract broken.
ANY_SPEC_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"description": "a spec as typed so far: any JSON value"},
                "example": EXAMPLE_SPEC,
            }
        },
    }
}


@router.post(
    "/analyze",
    summary="The layer table of your own spec, or 422 listing every problem by layer and field",
    response_model=Table,
    responses={
        **error_responses(406, 413, 415, 422),
        200: {"content": {"text/csv": {}}, "description": "the table (JSON, or CSV)"},
    },
    openapi_extra=SPEC_BODY,
)
def analyze_spec(spec: SpecBody, settings: SettingsDep, format: TableFormat) -> Response:
    """The same table as GET /api/architectures/{net_id}/table, for a spec of your own: only
    `name`, `input` and `layers` are required, every other layer field takes torch's default.
    An invalid spec is a 422 listing every problem by layer and field. CSV with `?format=csv`
    or `Accept: text/csv`."""
    table = analyze_cached(spec, settings.spec_limits)
    return table_response(table, format, "custom-net.csv")


class SpecCheck(BaseModel):
    valid: bool
    issues: list[SpecIssue]
    table: Table | None
    # For an invalid spec whose problems all sit in layers: the table of the layers before the
    # first of them, so an editor shows their outputs and clears only those that follow.
    valid_before: Table | None = None


def _table_before(raw: object, issues: list[SpecIssue], limits: SpecLimits) -> Table | None:
    """The table of the layers before the first one with a problem; None when a problem is
    not a layer's, or the first layer has one."""
    if not issues or any(issue.index is None for issue in issues):
        return None
    first = min(issue.index for issue in issues if issue.index is not None)
    if first == 0 or not isinstance(raw, dict) or not isinstance(raw.get("layers"), list):
        return None
    try:
        return analyze_cached({**raw, "layers": raw["layers"][:first]}, limits)
    except SpecInvalid:
        return None


@router.post(
    "/analyze/check",
    summary="For editors that check as the user types: the table or the problems, as 200",
    description=(
        "The same checks as POST /api/analyze, but an invalid spec is an answer here, not an "
        "error: `valid` is false and `issues` lists every problem. The custom page calls this "
        "on each edit, so a browser never logs a failed request for a half-typed spec."
    ),
    responses=error_responses(413, 415, 422),
    openapi_extra=ANY_SPEC_BODY,
)
def check_spec(spec: SpecBody, settings: SettingsDep) -> SpecCheck:
    try:
        table = analyze_cached(spec, settings.spec_limits)
    except SpecInvalid as error:
        before = _table_before(spec, error.issues, settings.spec_limits)
        return SpecCheck(valid=False, issues=error.issues, table=None, valid_before=before)
    return SpecCheck(valid=True, issues=[], table=table)
