"""What-if: a net changed in place (pools removed, conv1's kernel and stride, the input side,
global average pooling for FC1), beside the original.

The router reads the state (query parameters: the page's URL is the state, so it can be shared;
or a JSON body) and shapes the answer: the edits are app/core/whatif.py, every number the
calculator's, the comparison app/core/compare.py's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from app.core.calculator import builtin_table, validate_spec
from app.core.compare import Comparison
from app.core.errors import SpecInvalid
from app.core.limits import SpecLimits
from app.core.table import Frozen, Table
from app.core.whatif import (
    Edits,
    Headline,
    Preset,
    parse_edits,
    pool_names,
    preset_of,
    presets,
    what_if,
)
from app.core.whatif import WhatIf as Computed
from app.specs import builtin_registry
from app.specs.models import Conv, Spec, layer_names
from app.web.catalog import analyze_cached, editable_spec, encode_spec
from app.web.deps import SettingsDep
from app.web.errors import ApiError, bounded_issues, error_responses

router = APIRouter(prefix="/api", tags=["what-if"])

INT_KEYS = ("conv1_kernel", "conv1_stride", "input_side")
STATE_KEYS = frozenset({"preset", "remove_pools", "gap", *INT_KEYS})
WHOLE = re.compile(r"[0-9]{1,9}")
TRUE_WORDS = frozenset({"1", "true", "on", "yes"})
FALSE_WORDS = frozenset({"", "0", "false", "off", "no"})


class WhatIfAnswer(Frozen):
    """The edited net: its spec, its table, the comparison with the original (A) stage by stage
    and the totals' differences, the heaviest layer, and the links that carry the state."""

    net: str | None
    edits: Edits
    spec: Spec
    table: Table
    comparison: Comparison
    headline: Headline
    share_query: str
    editor_url: str


class WhatIfRequest(BaseModel):
    """A what-if for a built-in net (``net``) or your own spec (``spec``)."""

    model_config = ConfigDict(extra="forbid")

    net: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    spec: dict[str, Any] | None = None
    preset: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    edits: dict[str, Any] = Field(default_factory=dict, description="as the query parameters")


def invalid_whatif(error: SpecInvalid) -> ApiError:
    issues = [issue.model_dump() for issue in bounded_issues(error.issues)]
    detail = "; ".join(str(issue) for issue in bounded_issues(error.issues))
    return ApiError(
        422, "invalid_whatif", f"the what-if cannot be computed: {detail}", issues=issues
    )


def is_state(params: Mapping[str, Any]) -> bool:
    return any(key in STATE_KEYS for key in params)


def _whole(text: str) -> int | str:
    """A query value as a number; left as text (for the model to refuse, naming the field)."""
    return int(text) if WHOLE.fullmatch(text) else text


def _flag(text: str) -> bool | str:
    lowered = text.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    return False if lowered in FALSE_WORDS else text


def raw_edits(values: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Query values (each key's list) as the Edits fields; empty fields are unset."""
    raw: dict[str, Any] = {}
    pools = [name for name in values.get("remove_pools", []) if name]
    if pools:
        raw["remove_pools"] = pools
    for key in INT_KEYS:
        given = [text for text in values.get(key, []) if text.strip()]
        if given:
            raw[key] = _whole(given[-1].strip())
    if values.get("gap"):
        raw["gap"] = _flag(values["gap"][-1])
    return raw


def edits_of(spec: Spec, preset: str | None, raw: Mapping[str, Any]) -> Edits:
    """A preset's edits, then each field given explicitly over them."""
    base = preset_of(spec, preset).edits.model_dump() if preset else {}
    return parse_edits({**base, **raw})


def share_query(edits: Edits) -> str:
    """The state as the query string of a net page or of GET /api/whatif (without net)."""
    pairs: list[tuple[str, str]] = [("remove_pools", name) for name in edits.remove_pools]
    pairs += [(key, str(getattr(edits, key))) for key in INT_KEYS if getattr(edits, key)]
    if edits.gap:
        pairs.append(("gap", "1"))
    return urlencode(pairs)


def answer(result: Computed) -> WhatIfAnswer:
    return WhatIfAnswer(
        net=result.net,
        edits=result.edits,
        spec=result.spec,
        table=result.table,
        comparison=result.comparison,
        headline=result.headline,
        share_query=share_query(result.edits),
        editor_url=f"/custom?spec={encode_spec(editable_spec(result.spec))}",
    )


def compute(
    spec: Spec, original: Table, preset: str | None, raw: Mapping[str, Any], limits: SpecLimits
) -> WhatIfAnswer:
    """The answer, or ApiError 422 naming each bad edit (or the layer the edits break)."""
    try:
        return answer(what_if(spec, original, edits_of(spec, preset, raw), limits))
    except SpecInvalid as error:
        raise invalid_whatif(error) from None


def builtin_what_if(
    net: str, values: Mapping[str, Sequence[str]], limits: SpecLimits
) -> WhatIfAnswer:
    spec = builtin_registry().get(net)  # an unknown id: 404 naming the known ones
    preset = next((text for text in values.get("preset", []) if text), None)
    return compute(spec, builtin_table(net), preset, raw_edits(values), limits)


def presets_of(net: str) -> list[Preset]:
    return presets(builtin_registry().get(net))


@router.get(
    "/whatif",
    summary="A built-in net changed in place, beside the original",
    response_model=WhatIfAnswer,
    responses=error_responses(404, 422),
)
def get_whatif(
    settings: SettingsDep,
    net: Annotated[str, Query(max_length=64, examples=["alexnet-lecture"])],
    preset: Annotated[
        str | None, Query(max_length=64, description="a preset's id", examples=["no-shrinkage"])
    ] = None,
    remove_pools: Annotated[
        list[str] | None, Query(description="a pooling layer to remove; repeat the key")
    ] = None,
    conv1_kernel: Annotated[str | None, Query(max_length=16)] = None,
    conv1_stride: Annotated[str | None, Query(max_length=16)] = None,
    input_side: Annotated[str | None, Query(max_length=16)] = None,
    gap: Annotated[
        str | None, Query(max_length=8, description="1: global average pooling for FC1")
    ] = None,
) -> WhatIfAnswer:
    """The edits as query parameters (the net page's what-if URL uses the same): `preset`
    first, then each field over it. The edited spec's fields are bounded as POST /api/analyze
    bounds them; its totals are not, since nothing is built (the lecture's no-shrinkage FC6 has
    41,943,040,000 weights)."""
    given = {
        "preset": [preset or ""],
        "remove_pools": remove_pools or [],
        "conv1_kernel": [conv1_kernel or ""],
        "conv1_stride": [conv1_stride or ""],
        "input_side": [input_side or ""],
        "gap": [gap] if gap is not None else [],
    }
    return builtin_what_if(net, given, settings.spec_limits)


@router.post(
    "/whatif",
    summary="A built-in net or your own spec changed in place, beside the original",
    response_model=WhatIfAnswer,
    responses=error_responses(404, 413, 422),
)
def post_whatif(
    settings: SettingsDep,
    body: Annotated[
        WhatIfRequest,
        Body(
            openapi_examples={
                "lecture": {
                    "summary": "the lecture's no-shrinkage experiment",
                    "value": {"net": "alexnet-lecture", "preset": "no-shrinkage"},
                },
                "edits": {
                    "summary": "ZFNet's conv1 on AlexNet as taught",
                    "value": {
                        "net": "alexnet-lecture",
                        "edits": {"conv1_kernel": 7, "conv1_stride": 2},
                    },
                },
            }
        ),
    ],
) -> WhatIfAnswer:
    """`net` (a built-in id) or `spec` (your own, validated and bounded as POST /api/analyze
    does), with a `preset` and/or `edits` (remove_pools, conv1_kernel, conv1_stride,
    input_side, gap)."""
    if (body.net is None) == (body.spec is None):
        issue = {"location": "body", "message": "give either `net` or `spec`, not both"}
        raise ApiError(422, "invalid_request", issue["message"], issues=[issue])
    limits = settings.spec_limits
    if body.net is not None:
        spec = builtin_registry().get(body.net)
        original = builtin_table(body.net)
    else:
        original = analyze_cached(body.spec, limits)  # SpecInvalid: 422 naming every problem
        spec = validate_spec(body.spec)
    return compute(spec, original, body.preset, body.edits, limits)


def page_context(
    net: str, values: Mapping[str, Sequence[str]] | None, limits: SpecLimits, primary: Sequence[str]
) -> dict[str, Any]:
    """What the net page's what-if panel shows: the controls, and for a state, the result or
    the reason there is none."""
    spec = builtin_registry().get(net)
    found = presets(spec)
    conv1 = next(
        (
            (layer, name)
            for layer, name in zip(spec.layers, layer_names(spec), strict=True)
            if isinstance(layer, Conv)
        ),
        None,
    )
    context: dict[str, Any] = {
        "net": net,
        "presets": found,
        "has_lecture_preset": any(preset.says for preset in found),
        "pools": pool_names(spec),
        "conv1": conv1[0] if conv1 else None,
        "conv1_name": conv1[1] if conv1 else None,
        "input": spec.input,
        "can_gap": any(preset.edits.gap for preset in found),
        "limits": limits,
        "max_params": limits.max_params,
        "primary": primary,
        "edits": Edits(),
        "result": None,
        "error": None,
    }
    if values:
        try:
            result = builtin_what_if(net, values, limits)
        except ApiError as error:
            context["error"] = error.message
        else:
            context.update(
                result=result,
                edits=result.edits,
                answer_json=result.model_dump_json(),
            )
    return context
