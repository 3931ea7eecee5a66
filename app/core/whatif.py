"""What-if: a net's spec changed in place, then run through the one calculator.

Each edit is a transformation of the spec as data (remove a pool, change conv1's kernel or
stride, change the input side, put global average pooling in FC1's place); nothing here counts a
parameter. ``what_if`` applies the edits, computes the edited table with the calculator and sets
it beside the original with the compare machinery, stage by stage.

The presets are the lecture's own thought experiments. "If I had not done this shrinkage
throughout either by increasing the stride of the convolution layer or by doing max pooling, then
you would have left with something of the order of 200 x 200 here, and then you have to do a
fully connected on top of that": AlexNet as taught with no pool and conv1 at stride 1 loses
10 + 4 + 2 + 2 + 2 = 20 pixels per side, so a 220 x 220 input ends in exactly 200 x 200 x 256,
and FC6 connects those 10,240,000 values to 4,096 units.

Pure Python (stdlib + pydantic).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from app.core.calculator import BYTES_PER_FP32, compute_table
from app.core.compare import Comparison, compare
from app.core.errors import SpecInvalid, SpecIssue, issues_from_validation
from app.core.limits import SpecLimits, check_spec_limits
from app.core.numbers import exact_count
from app.core.table import Frozen, Table
from app.specs import models as m
from app.specs.registry import builtin_registry

POOL_KINDS = frozenset({"maxpool", "avgpool", "adaptiveavgpool"})
# What follows a layer and belongs to it: removed with FC1 when pooling takes its place.
HELPER_KINDS = frozenset({"relu", "dropout", "lrn", "batchnorm"})
GAP_NAME = "gap"
Side = Annotated[StrictInt, Field(ge=1)]


class Edits(BaseModel):
    """The changes to a net, all optional: the empty Edits is the net itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    remove_pools: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=64, description="names of pooling layers to remove"
    )
    conv1_kernel: Side | None = Field(default=None, description="conv1's new kernel size")
    conv1_stride: Side | None = Field(default=None, description="conv1's new stride")
    input_side: Side | None = Field(default=None, description="the input's new width = height")
    gap: StrictBool = Field(
        default=False, description="global average pooling in place of the first FC layer"
    )

    def is_empty(self) -> bool:
        return self == Edits()


class Preset(Frozen):
    id: str
    net: str | None  # the net it is about; None: it applies to any net
    title: str
    says: str | None  # the lecture's words, where it is the lecture's own experiment
    edits: Edits


class Headline(Frozen):
    """The largest layer of the edited net and what its weights weigh at fp32."""

    layer: str
    weights: int
    weights_text: str
    fp32_bytes: int
    fp32_text: str
    formula: str | None


class WhatIf(Frozen):
    net: str | None
    edits: Edits
    spec: m.Spec
    original: Table
    table: Table
    comparison: Comparison
    headline: Headline


def _issue(
    field: str, message: str, index: int | None = None, name: str | None = None
) -> SpecIssue:
    return SpecIssue(index=index, name=name, field=field, message=message)


def parse_edits(raw: object) -> Edits:
    """Edits from parsed JSON or query values; SpecInvalid names each bad field."""
    try:
        return Edits.model_validate(raw)
    except ValidationError as error:
        issues = issues_from_validation(error, raw)
        raise SpecInvalid(
            [issue.model_copy(update={"index": None, "name": None}) for issue in issues]
        ) from None


def pool_names(spec: m.Spec) -> list[str]:
    return [
        name
        for layer, name in zip(spec.layers, m.layer_names(spec), strict=True)
        if layer.kind in POOL_KINDS
    ]


def _first_conv(spec: m.Spec) -> int | None:
    return next((i for i, layer in enumerate(spec.layers) if isinstance(layer, m.Conv)), None)


def _without_figures(layer: m.Layer) -> m.Layer:
    return layer.model_copy(update={"lecture": []}) if layer.lecture else layer


def _named(spec: m.Spec) -> list[m.Layer]:
    """The layers with their names made explicit, so removing one renames no other."""
    return [
        _without_figures(layer).model_copy(update={"name": name})
        for layer, name in zip(spec.layers, m.layer_names(spec), strict=True)
    ]


def _remove_pools(layers: list[m.Layer], names: list[str]) -> list[m.Layer]:
    known = [layer.name for layer in layers if layer.kind in POOL_KINDS]
    unknown = [name for name in names if name not in known]
    if unknown:
        choices = ", ".join(str(name) for name in known) or "none"
        raise SpecInvalid(
            [
                _issue("remove_pools", f"{name!r} is not a pooling layer (pools: {choices})")
                for name in unknown
            ]
        )
    return [layer for layer in layers if layer.name not in names]


def _edit_conv1(layers: list[m.Layer], edits: Edits) -> list[m.Layer]:
    if edits.conv1_kernel is None and edits.conv1_stride is None:
        return layers
    index = next((i for i, layer in enumerate(layers) if isinstance(layer, m.Conv)), None)
    if index is None:
        raise SpecInvalid([_issue("conv1_kernel", "the net has no conv layer")])
    conv = layers[index]
    assert isinstance(conv, m.Conv)
    update: dict[str, Any] = {"notes": []}
    if edits.conv1_kernel is not None:
        update["kernel"] = edits.conv1_kernel
    if edits.conv1_stride is not None:
        update["stride"] = edits.conv1_stride
    return [*layers[:index], conv.model_copy(update=update), *layers[index + 1 :]]


def _gap_in_fc1(layers: list[m.Layer]) -> list[m.Layer]:
    """Global average pooling before flatten (1 x 1 x D), and FC1 with its ReLU and dropout
    gone: the next FC layer takes the D averages."""
    flat = next((i for i, layer in enumerate(layers) if layer.kind == "flatten"), None)
    linears = [i for i, layer in enumerate(layers) if layer.kind == "linear"]
    if flat is None or not linears or linears[0] < flat:
        raise SpecInvalid([_issue("gap", "the net has no flatten followed by an FC layer")])
    if len(linears) < 2:
        raise SpecInvalid([_issue("gap", "FC1 is the net's only FC layer: its classifier")])
    fc1 = linears[0]
    end = fc1 + 1
    while end < len(layers) and layers[end].kind in HELPER_KINDS:
        end += 1
    before = layers[:flat]
    gap = m.AdaptiveAvgPool(kind="adaptiveavgpool", name=GAP_NAME, output_size=1)
    if before and isinstance(before[-1], m.AdaptiveAvgPool):
        before = [*before[:-1], before[-1].model_copy(update={"output_size": 1})]
    else:
        taken = {layer.name for layer in layers}
        name = GAP_NAME if GAP_NAME not in taken else f"{GAP_NAME}_fc1"
        before = [*before, gap.model_copy(update={"name": name})]
    return [*before, *layers[flat:fc1], *layers[end:]]


def edited_name(spec: m.Spec) -> str:
    suffix = ", what-if"
    return spec.name[: 64 - len(suffix)] + suffix


def apply_edits(spec: m.Spec, edits: Edits) -> m.Spec:
    """The spec with the edits made; the lecture's figures and the net's metadata are dropped
    (they speak of the net as published, not of this one)."""
    layers = _remove_pools(_named(spec), edits.remove_pools)
    layers = _edit_conv1(layers, edits)
    if edits.gap:
        layers = _gap_in_fc1(layers)
    side = edits.input_side
    net_input = (
        spec.input
        if side is None
        else spec.input.model_copy(update={"height": side, "width": side})
    )
    return m.Spec(name=edited_name(spec), input=net_input, layers=layers)


def _headline(table: Table) -> Headline:
    row = max(table.layers, key=lambda row: (row.weights, -row.index))
    fp32 = BYTES_PER_FP32 * row.weights
    return Headline(
        layer=row.name,
        weights=row.weights,
        weights_text=about(row.weights),
        fp32_bytes=fp32,
        fp32_text=f"{about_bytes(fp32)} at fp32",
        formula=row.formula.params,
    )


def about(count: int) -> str:
    """A count in words as a teacher says it: about 41.9 billion, 37.7 million, 4,096."""
    for scale, word in ((10**12, "trillion"), (10**9, "billion"), (10**6, "million")):
        if count >= scale:
            return f"about {count / scale:.1f} {word}"
    return exact_count(count)


def about_bytes(size: int) -> str:
    """Bytes in decimal units, as storage is sold: 167,772,160,000 bytes is about 168 GB."""
    for scale, unit in ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "kB")):
        if size >= scale:
            return (
                f"about {size / scale:.0f} {unit}"
                if size >= 100 * scale
                else (f"about {size / scale:.1f} {unit}")
            )
    return f"{size} bytes"


def what_if(
    spec: m.Spec, original: Table, edits: Edits, limits: SpecLimits | None = None
) -> WhatIf:
    """The edited net's table and its comparison with the original. ``limits`` bounds the
    edited spec's fields (sides, kernels, strides); its totals are not bounded, since nothing
    is built: the arithmetic of a 41.9-billion-weight layer is as cheap as any other."""
    edited = apply_edits(spec, edits)
    if limits is not None:
        check_spec_limits(edited, limits)
    table = compute_table(edited)
    return WhatIf(
        net=spec.id,
        edits=edits,
        spec=edited,
        original=original,
        table=table,
        comparison=compare(spec, original, edited, table),
        headline=_headline(table),
    )


LECTURE_NET = "alexnet-lecture"
ZFNET = "zfnet-2013"  # the published ZFNet, whose conv1 the preset puts in any net


def _zfnet_conv1() -> m.Conv:
    spec = builtin_registry().get(ZFNET)
    conv = spec.layers[_first_conv(spec) or 0]
    assert isinstance(conv, m.Conv)
    return conv


NO_SHRINKAGE = "no-shrinkage"
LECTURE_SIDE = 200  # "something of the order of 200 x 200 here"


def _no_shrinkage(spec: m.Spec, pools: list[str]) -> Edits:
    """No pool and conv1 at stride 1: every layer then keeps its map but for kernel - 1 pixels,
    so the input that ends in the lecture's 200 x 200 is 200 plus what the convs take off."""
    flat = Edits(remove_pools=pools, conv1_stride=1)
    table = compute_table(apply_edits(spec, flat))
    last = next(
        row for row in reversed(table.layers) if row.jump is not None and row.kind != "flatten"
    )
    shrink = spec.input.width - last.output.width
    return flat.model_copy(update={"input_side": LECTURE_SIDE + shrink})


def presets(spec: m.Spec) -> list[Preset]:
    """The ready-made what-ifs for this net: the lecture's own where it is the lecture's
    AlexNet, then those any net with pools, a conv and two FC layers can take."""
    pools = pool_names(spec)
    found: list[Preset] = []
    if spec.id == LECTURE_NET:
        edits = _no_shrinkage(spec, pools)
        side = edits.input_side
        found.append(
            Preset(
                id=NO_SHRINKAGE,
                net=LECTURE_NET,
                title=f"The lecture's 'no shrinkage': no pooling, conv1 at stride 1, "
                f"{side} x {side} in",
                says=(
                    '"if I had not done this shrinkage throughout either by increasing the '
                    "stride of the convolution layer or by doing max pooling, then you would have "
                    "left with something of the order of 200 x 200 here and then you have to do "
                    'a fully connected on top of that: it is just infeasible"'
                ),
                edits=edits,
            )
        )
    zfnet = _zfnet_conv1()
    general = [
        ("no-pools", "Every pool removed", bool(pools), Edits(remove_pools=pools)),
        (
            "zfnet-conv1",
            f"ZFNet's conv1: {zfnet.kernel} x {zfnet.kernel} at stride {zfnet.stride}",
            _first_conv(spec) is not None,
            Edits(conv1_kernel=zfnet.kernel, conv1_stride=zfnet.stride),
        ),
        (
            "gap",
            "Global average pooling in place of FC1",
            sum(1 for layer in spec.layers if layer.kind == "linear") >= 2,
            Edits(gap=True),
        ),
    ]
    found += [
        Preset(id=key, net=None, title=title, says=None, edits=edits)
        for key, title, applies, edits in general
        if applies
    ]
    return found


def preset_of(spec: m.Spec, preset_id: str) -> Preset:
    found = {preset.id: preset for preset in presets(spec)}
    if preset_id not in found:
        known = ", ".join(found) or "none"
        raise SpecInvalid([_issue("preset", f"no preset {preset_id!r} for this net ({known})")])
    return found[preset_id]
