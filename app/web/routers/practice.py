"""Practice: the student's answer for one layer, checked, with the slip it shows named.

The router only reads the request and shapes the answer: the checking is app/core/practice.py,
and every number in it comes from the calculator.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from app.core.calculator import builtin_table, validate_spec
from app.core.limits import SpecLimits
from app.core.practice import (
    Answer,
    Checked,
    Practice,
    SlipInfo,
    UnknownLayer,
    catalogue,
    check,
    plan,
)
from app.specs import builtin_registry
from app.web.catalog import analyze_cached, editable_spec, summaries
from app.web.deps import SettingsDep
from app.web.errors import ApiError, echoable, error_responses, plain

router = APIRouter(prefix="/api/practice", tags=["practice"])

# Far above any count a net has (a billion parameters is the spec limit), small enough that
# every number compares exactly.
MAX_ANSWER = 10**15
PRACTICE_CACHE_SIZE = 64
ANSWER_SHAPE = "give [W, H, D], {width, height, depth} or one number, each from 0 to 10^15"

Count = Annotated[StrictInt, Field(ge=0, le=MAX_ANSWER)]
Unrounded = Annotated[StrictFloat, Field(ge=0, le=MAX_ANSWER, allow_inf_nan=False)]
Number = Count | Unrounded


class VolumeAnswer(BaseModel):
    """The output volume by name; the same as ``[width, height, depth]``."""

    model_config = ConfigDict(extra="forbid")

    width: Number
    height: Number
    depth: Number


class PracticeCheck(BaseModel):
    """One answer to check: for a built-in net (``net``) or your own spec (``spec``)."""

    model_config = ConfigDict(extra="forbid")

    net: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="a built-in net's id (see /api/architectures)"
    )
    spec: dict[str, Any] | None = Field(
        default=None, description="your own spec, as POST /api/analyze takes it"
    )
    layer: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="the layer's name, as its table names it (conv1, pool2, fc6, ...)"
    )
    quantity: Literal["output", "params"]
    answer: Annotated[list[Number], Field(min_length=3, max_length=3)] | VolumeAnswer | Number = (
        Field(
            description=(
                "output: the volume as [W, H, D] (W and H may be unrounded decimals, such as "
                "55.25) or as {width, height, depth}; after flatten a single number N means "
                "1 x 1 x N. params: one whole number."
            )
        )
    )

    @field_validator("answer", mode="wrap")
    @classmethod
    def _answer_shape(cls, value: object, handler: ValidatorFunctionWrapHandler) -> object:
        """One message for any answer of the wrong shape, not one per shape it is not."""
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(ANSWER_SHAPE) from None

    @model_validator(mode="after")
    def _one_net(self) -> PracticeCheck:
        if (self.net is None) == (self.spec is None):
            raise ValueError("give either `net` (a built-in id) or `spec` (your own), not both")
        return self


def _unknown_layer(error: UnknownLayer) -> ApiError:
    shown = echoable(error.name)
    asked = "no such layer" if shown is None else f"no layer named {shown!r}"
    known = [name for name in map(plain, error.known) if name is not None]
    return ApiError(
        422, "unknown_layer", f"{asked}; the layers are {', '.join(known)}", known=known
    )


def _invalid_answer(message: str) -> ApiError:
    issue = {"location": "body.answer", "message": message}
    return ApiError(422, "invalid_answer", f"invalid answer: {message}", issues=[issue])


def _vector_output(practice: Practice, layer: str) -> bool:
    row = practice.row(layer)
    return row.kind == "flatten" or practice.case(row).state.flattened


def answer_of(request: PracticeCheck, practice: Practice) -> Answer:
    """The answer in the checker's shape: (W, H, D) for an output, a number for params."""
    answer = request.answer
    if request.quantity == "params":
        if not isinstance(answer, int | float):
            raise _invalid_answer("a parameter count is one number")
        return answer
    if isinstance(answer, list):
        width, height, depth = answer
        return (width, height, depth)
    if isinstance(answer, VolumeAnswer):
        return (answer.width, answer.height, answer.depth)
    if not _vector_output(practice, request.layer):
        raise _invalid_answer("this layer's output is a volume: give [W, H, D]")
    return (1, 1, answer)


@lru_cache(maxsize=PRACTICE_CACHE_SIZE)
def _custom_practice(canonical: str, limits: SpecLimits) -> Practice:
    raw = json.loads(canonical)
    table = analyze_cached(raw, limits)  # SpecInvalid (a 422) names every problem
    return Practice(spec=validate_spec(raw), table=table)


EXAMPLES: dict[str, Any] = {
    "forgot_bias": {
        "summary": "AlexNet (as taught), conv1's parameters without the biases",
        "value": {
            "net": "alexnet-lecture",
            "layer": "conv1",
            "quantity": "params",
            "answer": 34848,
        },
    },
    "volume": {
        "summary": "its output volume, W x H x D",
        "value": {
            "net": "alexnet-lecture",
            "layer": "conv1",
            "quantity": "output",
            "answer": [55, 55, 96],
        },
    },
    "unrounded": {
        "summary": "an unrounded answer where the division is not exact (no_floor)",
        "value": {
            "net": "zfnet-2013",
            "layer": "conv1",
            "quantity": "output",
            "answer": [110.5, 110.5, 96],
        },
    },
}


def practice_of(net: str | None, spec: object, limits: SpecLimits) -> Practice:
    """A built-in net by id (404 naming the known ones), or a user's spec, validated and limited
    as POST /api/analyze does it."""
    if net is not None:
        return Practice(spec=builtin_registry().get(net), table=builtin_table(net))
    return _custom_practice(json.dumps(spec, sort_keys=True), limits)


@router.post(
    "/check",
    summary="Check a student's answer for one layer, and name the slip a wrong one shows",
    description=(
        "The exact value comes from the calculator; a wrong answer is matched against what each "
        "slip in GET /api/practice/slips gives for this layer (forgot_bias: the params without "
        "the biases; forgot_padding: the output with padding 0; ...), alone and in pairs. "
        "`slip` is the most plausible match, `slips` every slip the answer shows (forgot_padding "
        "and no_floor for an unrounded 54.25), and `formula` the layer's arithmetic, to reveal."
    ),
    responses=error_responses(404, 422),
)
def check_practice_answer(
    request: Annotated[PracticeCheck, Body(openapi_examples=EXAMPLES)], settings: SettingsDep
) -> Checked:
    practice = practice_of(request.net, request.spec, settings.spec_limits)
    try:
        return check(practice, request.layer, request.quantity, answer_of(request, practice))
    except UnknownLayer as error:
        raise _unknown_layer(error) from None


@router.get(
    "/slips",
    summary="Every slip the checker names, in the order it suspects them",
    description=(
        "Each slip's `code` (as `slip` and `slips` name it in POST /api/practice/check), the "
        "`quantity` it is a slip in, a short `title`, and the layer `kinds` it can happen in."
    ),
)
def list_practice_slips() -> list[SlipInfo]:
    return catalogue()


# -- the page ------------------------------------------------------------------------------------

DEFAULT_NET = "alexnet-lecture"


def page_context(practice: Practice, net: str | None, spec_param: str | None) -> dict[str, Any]:
    """What templates/practice.html shows, and the plan its script walks through (inert JSON:
    the net or spec each check names, every step, the slips' titles)."""
    steps = plan(practice)
    titles = {slip.code: slip.title for slip in catalogue()}
    data = {
        "net": net,
        "spec": None if net is not None else editable_spec(practice.spec),
        "store": f"net:{net}" if net is not None else f"spec:{spec_param}",
        "steps": [step.model_dump(mode="json") for step in steps],
        "titles": titles,
    }
    return {
        "name": practice.table.name,
        "net_id": net,
        "spec_param": spec_param,
        "steps": steps,
        "asked": sum(len(step.asks) for step in steps),
        "slips": catalogue(),
        "practice_json": json.dumps(data, separators=(",", ":")),
        "nets": summaries(),
        "load_error": None,
    }


def page_error_context(spec_param: str, message: str) -> dict[str, Any]:
    """The page for a link whose spec cannot be practised: what is wrong, and the way back."""
    return {
        "name": "your own spec",
        "net_id": None,
        "spec_param": spec_param,
        "nets": summaries(),
        "load_error": message,
    }
