"""Why the nets were designed as they were, as data: VGG's stacked 3x3 convs stage by stage,
and the first layer's sampling grid. The arithmetic is app/core/stacks.py and sampling.py."""

from __future__ import annotations

from fastapi import APIRouter

from app.core.sampling import FirstLayer, first_layer
from app.core.stacks import StackCase, stack_cases
from app.specs import builtin_registry
from app.web.deps import NetId
from app.web.errors import ApiError, error_responses

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
