"""Practice: check a student's answer for one layer, and name the slip a wrong answer shows.

Every number comes from the calculator. The exact answer is the table's row; a slip's wrong
answer is what the same layer rules (app/core/layers.py) give for the layer, or its input,
changed the way the slip changes it: ``forgot_padding`` is the layer with padding 0,
``forgot_input_depth`` the same layer on an input with one channel per group, ``forgot_bias``
the layer without biases. Nothing here re-derives a formula.

SLIPS is the catalogue, in the order a teacher would suspect them; adding a slip is one entry.
An answer is matched against the exact value first (a correct answer is never a slip), then
against each slip alone, then against pairs of slips on different parts of the arithmetic
(forgot_bias together with forgot_input_depth, say). The explanation naming the fewest slips
wins, the first in the catalogue among equals. A slip that cannot happen in this layer (no
padding to forget) or that gives the exact value is never named.

Outputs may be answered unrounded: W and H of a strided conv or pool are also matched as the
exact fraction (rounded to the decimals typed) and, in floor mode, rounded up, which names
``no_floor`` (beside any other slip: 54.25 for a conv whose padding was forgotten is
forgot_padding and no_floor).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Literal

from app.core import layers as rules
from app.core.compare import layer_settings
from app.core.errors import LayerError
from app.core.formatting import volume
from app.core.numbers import exact_count
from app.core.table import Frozen, LayerRow, Table
from app.specs import models as m

Quantity = Literal["output", "params"]
QUANTITIES: tuple[Quantity, ...] = ("output", "params")
Setting = int | bool | str | None
OutputAnswer = tuple[float, float, float]  # W, H, D
Answer = OutputAnswer | float

CONV = frozenset({"conv"})
POOLS = frozenset({"maxpool", "avgpool"})
WINDOWED = CONV | POOLS
ALL_POOLS = POOLS | {"adaptiveavgpool"}
PARAMETER_FREE = frozenset({"relu", "dropout", "lrn", "softmax", "flatten"})
# Layers whose output size is a setting, not arithmetic.
SET_OUTPUT = frozenset({"linear", "adaptiveavgpool"})
# Layers whose quantity is worth computing every time; any other layer's is asked once per
# kind (the first ReLU: "same volume, no parameters"; the first BatchNorm's 2 x C), then shown.
COMPUTES: dict[Quantity, frozenset[str]] = {
    "output": WINDOWED | {"adaptiveavgpool", "flatten", "linear"},
    "params": CONV | {"linear"},
}
# Settings always shown for a layer; any other only where it is not torch's default.
PRIMARY_SETTINGS = frozenset({"filters", "units", "kernel", "stride", "padding", "output_size"})
SETTING_DEFAULTS: dict[str, Setting] = {
    "dilation": 1,
    "groups": 1,
    "bias": True,
    "ceil_mode": False,
}
UNSHOWN_SETTINGS = frozenset({"alpha", "beta", "k", "eps", "p"})
# An unrounded W or H agrees with the fraction when it is the fraction rounded to the decimals
# the student typed (54.33 and 54.3 both agree with 163/3 = 54.333...), at least one decimal.
MAX_DECIMALS = 6


# -- the cases a slip is computed on ------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One layer on one input: what the calculator's rules take."""

    layer: m.Layer
    state: rules.State

    def result(self) -> rules.Result:
        return rules.apply(self.layer, self.state)

    def with_layer(self, **changes: object) -> Case:
        return replace(self, layer=self.layer.model_copy(update=changes))

    def with_input(self, **changes: int) -> Case | None:
        """The same layer on an input changed in these fields; None if a size drops below 1."""
        if any(value < 1 for value in changes.values()):
            return None
        volume = self.state.volume.model_copy(update=changes)
        return replace(self, state=replace(self.state, volume=volume))

    def as_vector(self, count: int) -> Case:
        """The same layer reading a flattened vector of ``count`` values."""
        volume = m.Volume(height=1, width=1, channels=count)
        return replace(self, state=replace(self.state, volume=volume, flattened=True))

    def kept_volume(self) -> Case:
        """The layer replaced by one that keeps the volume and holds no weights."""
        return replace(self, layer=m.ReLU(kind="relu"))


@dataclass(frozen=True)
class Practice:
    """One net as practised: its spec, its table and the calculator's state before each layer."""

    spec: m.Spec
    table: Table

    def row(self, name: str) -> LayerRow:
        for row in self.table.layers:
            if row.name == name:
                return row
        raise UnknownLayer(name, [row.name for row in self.table.layers])

    def case(self, row: LayerRow) -> Case:
        flattened = any(r.kind == "flatten" for r in self.table.layers[: row.index])
        spatial = rules.Spatial(receptive_field=row.receptive_field, jump=row.jump or 0)
        state = rules.State(volume=row.input, flattened=flattened, spatial=spatial)
        return Case(layer=self.spec.layers[row.index], state=state)

    def earlier_outputs(self, row: LayerRow) -> list[m.Volume]:
        """What reached each earlier layer, nearest first, back to the net's input."""
        return [r.output for r in reversed(self.table.layers[: row.index])] + [self.spec.input]

    def flatten_input(self, row: LayerRow) -> m.Volume | None:
        """The volume the flatten before this layer took in, when this layer reads its output."""
        for earlier in reversed(self.table.layers[: row.index]):
            if earlier.kind == "flatten":
                return earlier.input if earlier.output == row.input else None
        return None


class UnknownLayer(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"no layer named {name!r}")
        self.name = name
        self.known = known


# -- slip transforms: each returns the slipped cases, [] where the slip cannot happen -----------

Changes = Callable[[Case, Practice, LayerRow], list[Case]]


def _only(*cases: Case | None) -> list[Case]:
    return [case for case in cases if case is not None]


def _window(case: Case) -> tuple[int, int]:
    """(effective kernel, stride) as the calculator applies them."""
    window = case.result().window
    assert window is not None  # conv and pools always have one
    return window


def _no_padding(case: Case, *_: object) -> list[Case]:
    layer = case.layer
    if isinstance(layer, m.Conv | m.MaxPool | m.AvgPool) and layer.padding:
        return [case.with_layer(padding=0)]
    return []


def _padding_one_side(case: Case, *_: object) -> list[Case]:
    """Padding added once, not on both sides: ``padding`` pixels fewer to slide over."""
    layer = case.layer
    if not isinstance(layer, m.Conv | m.MaxPool | m.AvgPool) or not layer.padding:
        return []
    return [_span_shortened(case, layer.padding)]


def _no_plus_one(case: Case, *_: object) -> list[Case]:
    """(W - K + 2P) / S without the + 1: one stride fewer to slide over."""
    if case.layer.kind not in WINDOWED:
        return []
    return [_span_shortened(case, _window(case)[1])]


def _span_shortened(case: Case, pixels: int) -> Case:
    """The same window with ``pixels`` fewer positions to slide over, W - K + 2P becoming
    W - K + 2P - pixels: the kernel's span wider by whole dilations, at least ``pixels``, and
    the input wider by what that overshoots."""
    layer = case.layer
    assert isinstance(layer, m.Conv | m.MaxPool | m.AvgPool)
    stride = _window(case)[1]
    dilation = layer.dilation if isinstance(layer, m.Conv) else 1
    wider = -(-pixels // dilation)
    overshoot = wider * dilation - pixels
    slipped = case.with_layer(kernel=layer.kernel + wider, stride=stride)
    volume = case.state.volume
    grown = slipped.with_input(height=volume.height + overshoot, width=volume.width + overshoot)
    assert grown is not None  # the input only grows
    return grown


def _size_kept(case: Case, *_: object) -> list[Case]:
    """W and H kept from the input (as if the padding always made up for the kernel), D from
    the filters: the conv as a 1 x 1, stride 1, unpadded one."""
    if not isinstance(case.layer, m.Conv):
        return []
    return [case.with_layer(kernel=1, stride=1, padding=0, dilation=1)]


def _swap_kernel_and_stride(case: Case, *_: object) -> list[Case]:
    layer = case.layer
    if not isinstance(layer, m.Conv | m.MaxPool | m.AvgPool):
        return []
    stride = _window(case)[1]
    if stride == layer.kernel:
        return []
    return [case.with_layer(kernel=stride, stride=layer.kernel)]


def _no_stride(case: Case, *_: object) -> list[Case]:
    if case.layer.kind not in WINDOWED or _window(case)[1] == 1:
        return []
    return [case.with_layer(stride=1)]


def _no_dilation(case: Case, *_: object) -> list[Case]:
    layer = case.layer
    return [case.with_layer(dilation=1)] if isinstance(layer, m.Conv) and layer.dilation > 1 else []


def _floor_mode(case: Case, *_: object) -> list[Case]:
    layer = case.layer
    if isinstance(layer, m.MaxPool | m.AvgPool) and layer.ceil_mode:
        return [case.with_layer(ceil_mode=False)]
    return []


def _input_depth_kept(case: Case, *_: object) -> list[Case]:
    layer = case.layer
    channels = case.state.volume.channels
    if isinstance(layer, m.Conv) and layer.out_channels != channels:
        return [case.with_layer(out_channels=channels)]
    return []


def _input_as_output(case: Case, *_: object) -> list[Case]:
    return [case.kept_volume()] if case.layer.kind in COMPUTES["output"] else []


def _flatten_without_depth(case: Case, *_: object) -> list[Case]:
    if case.layer.kind != "flatten" or case.state.volume.channels == 1:
        return []
    return _only(case.with_input(channels=1))


def _depth_only(case: Case, practice: Practice, row: LayerRow) -> list[Case]:
    """Flatten (or the first FC layer) counted only the depth D, not W x H x D."""
    if case.layer.kind == "flatten":
        volume = case.state.volume
        return _only(case.with_input(height=1, width=1)) if volume.height * volume.width > 1 else []
    if case.layer.kind == "linear":
        flattened = practice.flatten_input(row)
        if flattened is not None and flattened.height * flattened.width > 1:
            return [case.as_vector(flattened.channels)]
    return []


def _fan_in_from_another_layer(case: Case, practice: Practice, row: LayerRow) -> list[Case]:
    """The fan-in taken from another layer's output (fc7 with fc6's 9,216), nearest first."""
    if case.layer.kind != "linear":
        return []
    fan_in = case.state.volume.channels
    counts = [v.height * v.width * v.channels for v in practice.earlier_outputs(row)]
    wrong = dict.fromkeys(count for count in counts if count != fan_in)
    return [case.as_vector(count) for count in wrong]


def _no_bias(case: Case, *_: object) -> list[Case]:
    layer = case.layer
    return (
        [case.with_layer(bias=False)] if isinstance(layer, m.Conv | m.Linear) and layer.bias else []
    )


def _no_input_depth(case: Case, *_: object) -> list[Case]:
    """K x K x filters: each filter as if one channel deep (one per group)."""
    layer = case.layer
    if not isinstance(layer, m.Conv) or case.state.volume.channels == layer.groups:
        return []
    return _only(case.with_input(channels=layer.groups))


def _one_filter(case: Case, *_: object) -> list[Case]:
    layer = case.layer
    if isinstance(layer, m.Conv) and layer.groups == 1 and layer.out_channels > 1:
        return [case.with_layer(out_channels=1)]
    return []


def _no_groups(case: Case, *_: object) -> list[Case]:
    layer = case.layer
    return [case.with_layer(groups=1)] if isinstance(layer, m.Conv) and layer.groups > 1 else []


def _dilated_weights(case: Case, *_: object) -> list[Case]:
    """Weights counted over the dilated span, as if dilation added weights."""
    layer = case.layer
    if not isinstance(layer, m.Conv) or layer.dilation == 1:
        return []
    effective = _window(case)[0]
    return [case.with_layer(kernel=effective, dilation=1)]


def _running_stats(case: Case, *_: object) -> list[Case]:
    """Running mean and variance counted too: as many numbers as a BatchNorm twice as deep."""
    if case.layer.kind != "batchnorm":
        return []
    return _only(case.with_input(channels=2 * case.state.volume.channels))


def _as_weightless(case: Case, *_: object) -> list[Case]:
    return [case.kept_volume()] if case.layer.kind == "batchnorm" else []


# -- the catalogue --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slip:
    """A named slip: where it can happen, how its wrong answer is computed, and what to say.

    Exactly one of ``changes`` (the slipped layer or input, computed by the calculator),
    ``reads`` (another number of the same row, such as its MACs), ``any_other`` (any answer but
    the exact one: a pool has no parameters whatever the student counted) or ``rounding`` (the
    output left unrounded or rounded up) says how. ``explanation`` is filled from _facts().

    ``touches`` names the part of the arithmetic the slip gets wrong: two slips pair up (forgot
    the bias and the input depth) only when they touch different parts, and a slip touching
    ``ALL`` (the answer is some other number altogether) pairs with none.
    """

    code: str
    quantity: Quantity
    kinds: frozenset[str]
    title: str
    explanation: str
    touches: frozenset[str] = frozenset()
    changes: Changes | None = None
    reads: Callable[[LayerRow], int] | None = None
    any_other: bool = False
    rounding: bool = False


ALL = "all"


def _parts(*names: str) -> frozenset[str]:
    return frozenset(names)


SLIPS: tuple[Slip, ...] = (
    # Output volume, W x H x D.
    Slip(
        "forgot_ceil_mode",
        "output",
        POOLS,
        "Rounded down in a ceil-mode pool",
        "This pool is in ceil mode: it rounds up, keeping a last partial window.",
        _parts("rounding"),
        changes=_floor_mode,
    ),
    Slip(
        "forgot_padding",
        "output",
        WINDOWED,
        "Forgot the padding",
        "You left out the padding: add 2 x {padding} to the input before taking the window.",
        _parts("padding"),
        changes=_no_padding,
    ),
    Slip(
        "forgot_plus_one",
        "output",
        WINDOWED,
        "Forgot the + 1",
        "Add 1 after dividing: the first window sits at the start, then one more per stride.",
        _parts("plus_one"),
        changes=_no_plus_one,
    ),
    Slip(
        "spatial_size_kept",
        "output",
        CONV,
        "Kept W and H from the input",
        "W and H change here: a {kernel}x{kernel} window at stride {stride} with padding "
        "{padding} does not keep the input's {in_w} x {in_h}.",
        _parts("padding", "plus_one", "kernel", "stride"),
        changes=_size_kept,
    ),
    Slip(
        "padding_one_side",
        "output",
        WINDOWED,
        "Padded one side only",
        "Padding goes on both sides: add 2 x {padding}, not {padding}.",
        _parts("padding"),
        changes=_padding_one_side,
    ),
    Slip(
        "kernel_stride_swapped",
        "output",
        WINDOWED,
        "Swapped kernel and stride",
        "Kernel and stride are swapped: subtract the kernel ({kernel}), divide by the stride "
        "({stride}).",
        _parts("kernel", "stride"),
        changes=_swap_kernel_and_stride,
    ),
    Slip(
        "forgot_stride",
        "output",
        WINDOWED,
        "Forgot to divide by the stride",
        "Divide by the stride: the window moves {stride} pixels at a time.",
        _parts("stride"),
        changes=_no_stride,
    ),
    Slip(
        "forgot_dilation",
        "output",
        CONV,
        "Forgot that dilation widens the kernel",
        "Dilation {dilation} widens the {kernel}x{kernel} kernel to span {effective} pixels: "
        "subtract {effective}, not {kernel}.",
        _parts("kernel"),
        changes=_no_dilation,
    ),
    Slip(
        "channels_kept_from_input",
        "output",
        CONV,
        "Kept the input's depth",
        "A conv's output depth is its number of filters ({filters}), not the input's depth "
        "({in_d}).",
        _parts("depth"),
        changes=_input_depth_kept,
    ),
    Slip(
        "used_input_size",
        "output",
        COMPUTES["output"],
        "Gave the input volume",
        "That is the input volume; this layer changes it.",
        _parts(ALL),
        changes=_input_as_output,
    ),
    Slip(
        "flatten_forgot_depth",
        "output",
        frozenset({"flatten"}),
        "Flattened without the depth",
        "Flatten keeps every channel too: W x H x D = {in_w} x {in_h} x {in_d}, not W x H.",
        _parts("flatten"),
        changes=_flatten_without_depth,
    ),
    Slip(
        "flatten_forgot_spatial",
        "output",
        frozenset({"flatten"}),
        "Flattened without W and H",
        "Flatten keeps every position: W x H x D = {in_w} x {in_h} x {in_d}, not just D.",
        _parts("flatten"),
        changes=_depth_only,
    ),
    Slip(
        "no_floor",
        "output",
        WINDOWED,
        "Did not round down",
        "The division is not exact, and a volume holds whole units: torch {rounding}.",
        _parts("rounding"),
        rounding=True,
    ),
    # Parameters.
    Slip(
        "forgot_bias",
        "params",
        CONV | {"linear"},
        "Forgot the biases",
        "You counted the weights but not the biases: one per {unit}, {biases} in all.",
        _parts("bias"),
        changes=_no_bias,
    ),
    Slip(
        "forgot_input_depth",
        "params",
        CONV,
        "Forgot the input depth",
        "Each filter spans the input's depth: {kernel} x {kernel} x {per_filter_depth} weights, "
        "not {kernel} x {kernel}.",
        _parts("depth"),
        changes=_no_input_depth,
    ),
    Slip(
        "counted_one_filter",
        "params",
        CONV,
        "Counted one filter",
        "That is one filter; the layer has {filters} of them.",
        _parts("filters"),
        changes=_one_filter,
    ),
    Slip(
        "forgot_groups",
        "params",
        CONV,
        "Forgot the groups",
        "With groups = {groups}, each filter sees only {in_d} / {groups} = {per_filter_depth} "
        "input channels.",
        _parts("depth"),
        changes=_no_groups,
    ),
    Slip(
        "dilation_adds_weights",
        "params",
        CONV,
        "Counted weights over the dilated span",
        "Dilation spreads the same {kernel}x{kernel} weights over {effective}x{effective} "
        "pixels; it adds no weights.",
        _parts("kernel"),
        changes=_dilated_weights,
    ),
    Slip(
        "flatten_forgot_spatial",
        "params",
        frozenset({"linear"}),
        "Fan-in of the depth alone",
        "The fan-in is every value flatten lays out, W x H x D = {fan_in}, not just the depth.",
        _parts("fan_in"),
        changes=_depth_only,
    ),
    Slip(
        "fc_fan_in_wrong_layer",
        "params",
        frozenset({"linear"}),
        "Fan-in from the wrong layer",
        "The fan-in is what reaches this layer ({fan_in} values), not {slipped_fan_in} from "
        "another layer.",
        _parts("fan_in"),
        changes=_fan_in_from_another_layer,
    ),
    Slip(
        "gave_macs",
        "params",
        CONV | {"linear"},
        "Gave the MACs",
        "That is the layer's multiply-accumulates (MACs) per image, not its parameters.",
        _parts(ALL),
        reads=lambda row: row.macs,
    ),
    Slip(
        "bn_running_stats_counted",
        "params",
        frozenset({"batchnorm"}),
        "Counted BatchNorm's running statistics",
        "The running mean and variance are buffers, not learned: only the {in_d} scales and "
        "{in_d} shifts count.",
        _parts(ALL),
        changes=_running_stats,
    ),
    Slip(
        "bn_has_no_params",
        "params",
        frozenset({"batchnorm"}),
        "Gave BatchNorm no parameters",
        "BatchNorm learns a scale and a shift for each of the {in_d} channels.",
        _parts(ALL),
        changes=_as_weightless,
    ),
    Slip(
        "pool_has_params",
        "params",
        ALL_POOLS,
        "Gave a pool parameters",
        "Pooling has no weights: it takes the max or the mean of each window. 0 parameters.",
        _parts(ALL),
        any_other=True,
    ),
    Slip(
        "layer_has_no_params",
        "params",
        PARAMETER_FREE,
        "Gave a weightless layer parameters",
        "A {kind} layer has no weights: 0 parameters.",
        _parts(ALL),
        any_other=True,
    ),
)

# What to say when the answer is right, or wrong in a way no slip explains.
HINTS: dict[tuple[str, Quantity], str] = {
    ("conv", "output"): "W and H: (input - kernel + 2 x padding) / stride + 1, rounded down; "
    "D: the number of filters.",
    ("conv", "params"): "Each filter: kernel x kernel x input depth weights and one bias.",
    ("maxpool", "output"): "W and H as for a conv; the depth stays.",
    ("avgpool", "output"): "W and H as for a conv; the depth stays.",
    ("adaptiveavgpool", "output"): "W and H are the set output size; the depth stays.",
    ("flatten", "output"): "One long vector of W x H x D values.",
    ("linear", "output"): "One value per unit.",
    ("linear", "params"): "fan-in x units weights, and one bias per unit.",
    ("batchnorm", "params"): "A scale and a shift per channel; running statistics are buffers.",
}
ROUNDING = {
    False: "rounds it down (floor), dropping the last partial window",
    True: "rounds it up here (ceil mode), keeping a last partial window",
}
SAME_VOLUME_HINT = "Same volume as the input."
NO_WEIGHTS_HINT = "No weights here: 0 parameters."


def slip_codes() -> list[str]:
    """Every code the checker can name, once each, in the catalogue's order."""
    return list(dict.fromkeys(slip.code for slip in SLIPS))


# -- the answer ---------------------------------------------------------------------------------


class Checked(Frozen):
    correct: bool
    exact: list[int] | int
    slip: str | None
    slips: list[str]
    explanation: str
    formula: str


def _facts(case: Case, row: LayerRow, slipped: Case | None) -> dict[str, str]:
    """The numbers an explanation may name, formatted: the layer's settings and the row's."""
    layer, volume = case.layer, case.state.volume
    facts = {
        "kind": layer.kind,
        "in_w": exact_count(volume.width),
        "in_h": exact_count(volume.height),
        "in_d": exact_count(volume.channels),
        "fan_in": exact_count(volume.channels),
        "biases": exact_count(row.biases),
        "unit": "filter" if layer.kind == "conv" else "unit",
    }
    for key, value in layer_settings(layer).items():
        is_count = isinstance(value, int) and not isinstance(value, bool)
        facts[key] = exact_count(value) if is_count and isinstance(value, int) else str(value)
    ceil_mode = isinstance(layer, m.MaxPool | m.AvgPool) and layer.ceil_mode
    facts["rounding"] = ROUNDING[ceil_mode]
    if isinstance(layer, m.Conv):
        facts["effective"] = exact_count(_window(case)[0])
        facts["per_filter_depth"] = exact_count(volume.channels // layer.groups)
    if slipped is not None:
        facts["slipped_fan_in"] = exact_count(slipped.state.volume.channels)
    return facts


def _exact(row: LayerRow, quantity: Quantity) -> list[int] | int:
    if quantity == "params":
        return row.params
    return [row.output.width, row.output.height, row.output.channels]


def _formula(row: LayerRow, quantity: Quantity) -> str:
    """The row's arithmetic, as the layer table shows it; where there is none to do, what the
    layer table says instead (the volume as set, or the input's kept)."""
    if quantity == "params":
        return row.formula.params or f"no weights: {exact_count(0)} params"
    if row.formula.output is not None:
        return row.formula.output
    if row.kind in SET_OUTPUT:
        return f"{volume(row.output)}, as the layer is set"
    return f"the input's volume, {volume(row.output)}"


def _hint(kind: str, quantity: Quantity) -> str:
    if (kind, quantity) in HINTS:
        return HINTS[kind, quantity]
    return SAME_VOLUME_HINT if quantity == "output" else NO_WEIGHTS_HINT


# -- matching --------------------------------------------------------------------------------------


def _agrees(answer: float, value: Fraction) -> bool:
    """A typed decimal agrees with a fraction when it is the fraction rounded (half up) to the
    decimals typed (at least one, at most MAX_DECIMALS)."""
    typed = Decimal(repr(answer)).normalize()
    exponent = typed.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) else 0
    if not 1 <= decimals <= MAX_DECIMALS:
        return False
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    step = Decimal(1).scaleb(-decimals)
    return typed == exact.quantize(step, ROUND_HALF_UP)


@dataclass(frozen=True)
class AxisValues:
    """W or H of one case: the calculator's value, and the unrounded fraction and its ceiling
    where a strided window does not divide evenly (None otherwise)."""

    whole: int
    fraction: Fraction | None
    floors: bool = True  # False in a ceil-mode pool, where rounding up is the rule

    def reading(self, answer: float) -> Literal["whole", "unrounded"] | None:
        if answer == self.whole:
            return "whole"
        if self.fraction is None:
            return None
        rounded_up = -(-self.fraction.numerator // self.fraction.denominator)
        if self.floors and answer == rounded_up:
            return "unrounded"
        return "unrounded" if _agrees(answer, self.fraction) else None


def _axes(case: Case, output: m.Volume) -> tuple[AxisValues, AxisValues]:
    """W and H: the fraction comes from the calculator at stride 1 (the span plus one), divided
    by the stride, plus one: what "no floor" computes."""
    if case.layer.kind not in WINDOWED or _window(case)[1] == 1:
        return AxisValues(output.width, None), AxisValues(output.height, None)
    stride = _window(case)[1]
    unit = case.with_layer(stride=1).result().output
    floors = not (isinstance(case.layer, m.MaxPool | m.AvgPool) and case.layer.ceil_mode)
    width = Fraction(unit.width - 1, stride) + 1
    height = Fraction(unit.height - 1, stride) + 1
    return (
        AxisValues(output.width, None if width.denominator == 1 else width, floors),
        AxisValues(output.height, None if height.denominator == 1 else height, floors),
    )


def _match_output(case: Case, answer: OutputAnswer) -> list[str] | None:
    """None when the answer is not this case's output; else the extra slips its reading shows
    ([] for the calculator's own values, ["no_floor"] for an unrounded W or H)."""
    output = case.result().output
    width, height = _axes(case, output)
    readings = [width.reading(answer[0]), height.reading(answer[1])]
    if None in readings or answer[2] != output.channels:
        return None
    return ["no_floor"] if "unrounded" in readings else []


def _match_params(case: Case, answer: float) -> list[str] | None:
    result = case.result()
    return [] if answer == result.weights + result.biases else None


def _changed(changes: Changes, case: Case, practice: Practice, row: LayerRow) -> list[Case]:
    """A slip on a case, [] where that case cannot run (a kernel wider than the unpadded input,
    say)."""
    try:
        return changes(case, practice, row)
    except LayerError:
        return []


def _pairable(first: Slip, second: Slip) -> bool:
    """Two slips on different parts of the arithmetic, neither of them a different number
    altogether."""
    touched = first.touches | second.touches
    return ALL not in touched and not first.touches & second.touches


@dataclass(frozen=True)
class Match:
    codes: list[str]
    case: Case | None


Candidate = tuple[tuple[Slip, ...], Case]


def _singles(
    slips: list[Slip], case: Case, practice: Practice, row: LayerRow
) -> dict[Slip, list[Case]]:
    """Each computed slip's slipped cases, in the catalogue's order."""
    computed = (slip for slip in slips if slip.changes is not None)
    return {slip: _changed(slip.changes, case, practice, row) for slip in computed if slip.changes}


def _pairs(
    singles: dict[Slip, list[Case]], practice: Practice, row: LayerRow
) -> Iterator[Candidate]:
    for first, second in itertools.combinations(singles, 2):
        if _pairable(first, second) and second.changes is not None:
            for slipped in singles[first]:
                for both in _changed(second.changes, slipped, practice, row):
                    yield (first, second), both


def _matches(
    candidates: Iterable[Candidate], match_case: Callable[[Case], list[str] | None]
) -> Iterator[tuple[int, Match]]:
    """(slips named, match) for each candidate the answer fits, in order."""
    for chain, candidate in candidates:
        try:
            extras = match_case(candidate)
        except LayerError:
            continue  # the slipped layer cannot run: the slip cannot happen here
        if extras is not None:
            codes = [slip.code for slip in chain] + extras
            yield len(codes), Match(codes, candidate if chain else None)


def _match(
    slips: list[Slip],
    case: Case,
    practice: Practice,
    row: LayerRow,
    quantity: Quantity,
    answer: Answer,
) -> Match | None:
    """The explanation naming the fewest slips (an unrounded W or H counts as one), the first
    in the catalogue's order among those; None when no slip explains the answer. The exact
    case comes first, so the exact answer is never a slip, even where a slip changes nothing."""
    match_case: Callable[[Case], list[str] | None]
    if quantity == "output":
        assert isinstance(answer, tuple)
        match_case = lambda candidate: _match_output(candidate, answer)  # noqa: E731
    else:
        assert not isinstance(answer, tuple)
        match_case = lambda candidate: _match_params(candidate, answer)  # noqa: E731
    singles = _singles(slips, case, practice, row)
    alone: list[Candidate] = [((), case)]
    alone += [((slip,), slipped) for slip, cases in singles.items() for slipped in cases]
    found = list(_matches(alone, match_case))
    if found and found[0][0] == 0:
        return found[0][1]
    for slip in slips:
        reads = slip.reads is not None and answer == slip.reads(row) != row.params
        if reads or slip.any_other:
            found.append((1, Match([slip.code], None)))
    if not any(count == 1 for count, _ in found):  # two slips only where one explains nothing
        found += _matches(_pairs(singles, practice, row), match_case)
    if not found:
        return None
    fewest = min(count for count, _ in found)
    return next(match for count, match in found if count == fewest)


def _catalogue(kind: str, quantity: Quantity) -> list[Slip]:
    return [slip for slip in SLIPS if slip.quantity == quantity and kind in slip.kinds]


def _explain(codes: list[str], facts: dict[str, str], kind: str, quantity: Quantity) -> str:
    by_code = {slip.code: slip for slip in _catalogue(kind, quantity)}
    return " ".join(by_code[code].explanation.format_map(facts) for code in codes)


def _wrong_parts(row: LayerRow, answer: OutputAnswer) -> str:
    exact = (row.output.width, row.output.height, row.output.channels)
    wrong = [name for name, mine, true in zip("WHD", answer, exact, strict=True) if mine != true]
    return " and ".join(wrong)


def check(practice: Practice, layer: str, quantity: Quantity, answer: Answer) -> Checked:
    """The exact value, whether the answer is it, and the slips a wrong answer shows."""
    row = practice.row(layer)
    case = practice.case(row)
    if quantity == "output" and not isinstance(answer, tuple):
        raise ValueError("the output is W, H and D: three numbers")
    if quantity == "params" and isinstance(answer, tuple):
        raise ValueError("the parameter count is one number")
    slips = _catalogue(row.kind, quantity)
    found = _match(slips, case, practice, row, quantity, answer)
    codes = found.codes if found else []
    correct = found is not None and not codes
    facts = _facts(case, row, found.case if found else None)
    if correct:
        explanation = _hint(row.kind, quantity)
    elif codes:
        explanation = _explain(codes, facts, row.kind, quantity)
    elif quantity == "output":
        assert isinstance(answer, tuple)
        part = _wrong_parts(row, answer)
        explanation = f"Not quite: {part} {'is' if len(part) == 1 else 'are'} off. " + _hint(
            row.kind, quantity
        )
    else:
        explanation = f"Not quite. {_hint(row.kind, quantity)}"
    return Checked(
        correct=correct,
        exact=_exact(row, quantity),
        slip=codes[0] if codes else None,
        slips=codes,
        explanation=explanation,
        formula=_formula(row, quantity),
    )


# -- the plan: which layers ask what ------------------------------------------------------------


class Step(Frozen):
    """One layer as practice shows it: what is given and which quantities the student works out.

    ``asks`` lists what is asked; ``given`` what is shown worked out, with its value and why
    (``given_why``), because there is nothing new to compute (the second ReLU's volume, the
    second pool's 0 parameters).
    ``input`` is the exact input, so a slip upstream never carries on. ``vector``: the output
    is a flat vector (after flatten), so only its length is asked.
    """

    index: int
    name: str
    kind: str
    settings: dict[str, Setting]
    input: m.Volume
    asks: list[Quantity]
    given: dict[Quantity, list[int] | int]
    given_why: dict[Quantity, str]
    vector: bool


def _shown_settings(layer: m.Layer) -> dict[str, Setting]:
    return {
        key: value
        for key, value in layer_settings(layer).items()
        if key not in UNSHOWN_SETTINGS
        and (key in PRIMARY_SETTINGS or SETTING_DEFAULTS.get(key, value) != value)
    }


def plan(practice: Practice) -> list[Step]:
    """Every layer in order; each quantity asked where it needs computing, and once per kind
    elsewhere (the first ReLU's 'same volume, no parameters'), given after that."""
    seen: set[tuple[str, Quantity]] = set()
    steps = []
    for row in practice.table.layers:
        asks: list[Quantity] = []
        for quantity in QUANTITIES:
            if row.kind in COMPUTES[quantity] or (row.kind, quantity) not in seen:
                asks.append(quantity)
            seen.add((row.kind, quantity))
        steps.append(
            Step(
                index=row.index,
                name=row.name,
                kind=row.kind,
                settings=_shown_settings(practice.spec.layers[row.index]),
                input=row.input,
                asks=asks,
                given={q: _exact(row, q) for q in QUANTITIES if q not in asks},
                given_why={q: _hint(row.kind, q) for q in QUANTITIES if q not in asks},
                vector=practice.case(row).state.flattened or row.kind == "flatten",
            )
        )
    return steps


class SlipInfo(Frozen):
    """A slip as the API and the page list it."""

    code: str
    quantity: Quantity
    title: str
    kinds: list[str]


def catalogue() -> list[SlipInfo]:
    """Every slip the checker names, in the order it suspects them."""
    return [
        SlipInfo(code=s.code, quantity=s.quantity, title=s.title, kinds=sorted(s.kinds))
        for s in SLIPS
    ]
