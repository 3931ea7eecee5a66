"""Why the nets were designed as they were, as data: VGG's stacked 3x3 convs stage by stage,
the first layer's sampling grid, and (for a pretrained net) conv1's filters as a picture. The
arithmetic is app/core/stacks.py and sampling.py; the picture is drawn by the build."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.core.calculator import builtin_table
from app.core.receptive import UnitField, unit_fields
from app.core.sampling import FirstLayer, first_layer
from app.core.stacks import StackCase, stack_cases
from app.core.table import Frozen
from app.inference.images import source_box
from app.repository.manifest import FiltersFile, ManifestError, read_manifest
from app.specs import builtin_registry
from app.web.caching import HASH_CHARS, REVALIDATE, matches
from app.web.deps import NetId, SettingsDep
from app.web.errors import ApiError, error_responses
from app.web.public import public_text

Side = Annotated[int | None, Query(ge=1, le=1_000_000, description="the picture's pixels")]


class PictureView(Frozen):
    """How the net sees a width x height picture: the served model's preprocessing (resize the
    shorter side, center-crop) and the crop in the picture's own pixels."""

    width: int
    height: int
    resize: int
    crop: int
    source_box: list[float]  # left, top, right, bottom


class ReceptiveFields(Frozen):
    net: str
    input: int  # the net's input side: the crop, in the pixels the fields are counted in
    layers: list[UnitField]
    view: PictureView | None


router = APIRouter(prefix="/api/architectures", tags=["architectures"])


@router.get(
    "/{net_id}/stacks",
    summary="Each stage of stacked 3x3 convs against one (2n+1)x(2n+1) conv",
    response_model=list[StackCase],
    responses=error_responses(404),
)
def get_stacks(net_id: NetId) -> list[StackCase]:
    """For each stage of two or more 3x3 stride-1 convs: weights, MACs, receptive field and
    non-linearities of the stack as the net builds it and of the one conv that would replace
    it (same input, same output channels), and the paper's comparison at C channels in and out
    (VGG-16's 256-channel stage: 1,769,472 weights against 3,211,264). Empty for a net with
    no such stage."""
    return stack_cases(builtin_registry().get(net_id))


@router.get(
    "/{net_id}/first-layer",
    summary="conv1's sampling grid: where its units look and which pixels none sees",
    response_model=FirstLayer,
    responses=error_responses(404),
)
def get_first_layer(net_id: NetId) -> FirstLayer:
    """Each unit's first input pixel along an axis, how many windows cover each pixel, and the
    pixels no window covers; for a lecture net that states a different number of units, the
    same with the lecture's count (ZFNet as taught: 55 stated, 56 computed)."""
    found = first_layer(builtin_registry().get(net_id))
    if found is None:
        raise ApiError(
            404, "no_first_conv", "the net's first layer is not a square conv on a square input"
        )
    return found


PNG = "image/png"
BINARY = {"type": "string", "format": "binary"}


def _filters(model_dir: Path) -> tuple[FiltersFile, bytes]:
    """The net's drawn conv1 filters and the PNG's bytes, checked against its manifest."""
    try:
        manifest = read_manifest(model_dir)
    except ManifestError as error:
        raise ApiError(
            409, "model_not_built", f"the net's model is {public_text(str(error))}"
        ) from None
    filters = manifest.filters
    if filters is None:
        why = (
            "the net is untrained (seeded random weights): its conv1 filters are noise, so "
            "none are drawn"
            if manifest.weights.kind == "untrained"
            else "the net's model was built before conv1's filters were drawn: rebuild it"
        )
        raise ApiError(404, "no_filters", why)
    try:
        body = (model_dir / filters.path).read_bytes()
    except OSError:
        body = b""
    if hashlib.sha256(body).hexdigest() != filters.sha256:
        raise ApiError(
            409, "model_damaged", f"{filters.path} does not match the sha256 in its manifest"
        )
    return filters, body


@router.get(
    "/{net_id}/first-layer/filters.png",
    summary="conv1's filters as one image grid, for a net built from a pretrained checkpoint",
    response_class=Response,
    responses={200: {"content": {PNG: {"schema": BINARY}}}, **error_responses(404, 409)},
)
def get_first_layer_filters(net_id: NetId, settings: SettingsDep, request: Request) -> Response:
    """A PNG: each of conv1's filters min-max normalised on its own, in order, row by row, 1 px
    apart, each weight drawn as a square of pixels (the manifest's `filters` says how many).
    404 `no_filters` for an untrained net (random filters show nothing), 409 when not built."""
    builtin_registry().get(net_id)  # an unknown id: 404 naming the known ones
    filters, body = _filters(settings.models_dir / net_id)
    tag = f'"{filters.sha256[:HASH_CHARS]}"'
    headers = {"ETag": tag, "Cache-Control": REVALIDATE}
    if matches(request.headers, tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=PNG, headers=headers)


def _view(model_dir: Path, width: int, height: int) -> PictureView:
    try:
        steps = read_manifest(model_dir).preprocess
    except ManifestError as error:
        raise ApiError(
            409, "model_not_built", f"the net's model is {public_text(str(error))}"
        ) from None
    box = source_box(width, height, steps.resize, steps.crop)
    return PictureView(
        width=width, height=height, resize=steps.resize, crop=steps.crop, source_box=list(box)
    )


@router.get(
    "/{net_id}/receptive-fields",
    summary="Where one unit of each conv and pool layer looks, and how the net sees a picture",
    response_model=ReceptiveFields,
    responses=error_responses(404, 409, 422),
)
def get_receptive_fields(
    net_id: NetId, settings: SettingsDep, width: Side = None, height: Side = None
) -> ReceptiveFields:
    """Each conv and pool layer's receptive field, jump and start (unit i sees input pixels
    start + i * jump to start + i * jump + RF - 1). With the `width` and `height` of a picture,
    the served model's preprocessing and the crop it takes of that picture."""
    spec = builtin_registry().get(net_id)
    fields = unit_fields(spec, builtin_table(net_id))
    view = None
    if (width is None) != (height is None):
        issue = {"location": "query", "message": "give both width and height, or neither"}
        raise ApiError(422, "invalid_request", issue["message"], issues=[issue])
    if width is not None and height is not None:
        view = _view(settings.models_dir / net_id, width, height)
    return ReceptiveFields(net=net_id, input=spec.input.width, layers=fields, view=view)
