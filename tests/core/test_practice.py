"""The practice checker: right answers are right, and each slip is named from an answer that
makes it, with numbers worked out here by hand (and, on random specs, by the test's own
arithmetic, independent of the calculator)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.core.calculator import analyze, builtin_table, validate_spec
from app.core.errors import SpecInvalid
from app.core.practice import (
    SLIPS,
    Answer,
    Practice,
    Quantity,
    UnknownLayer,
    catalogue,
    check,
    plan,
    slip_codes,
)
from app.specs import builtin_registry


def builtin(net_id: str) -> Practice:
    return Practice(builtin_registry().get(net_id), builtin_table(net_id))


def custom(spec: dict[str, Any]) -> Practice:
    return Practice(validate_spec(spec), analyze(spec))


# (net, layer, quantity, answer, the slips named): every number worked out by hand.
NAMED: list[tuple[str, str, Quantity, Answer, list[str]]] = [
    # alexnet-lecture, conv1: 227x227x3, 96 filters 11x11, stride 4, no padding
    ("alexnet-lecture", "conv1", "params", 34_848, ["forgot_bias"]),  # 11*11*3*96
    ("alexnet-lecture", "conv1", "params", 11_712, ["forgot_input_depth"]),  # 11*11*96 + 96
    ("alexnet-lecture", "conv1", "params", 11_616, ["forgot_bias", "forgot_input_depth"]),
    ("alexnet-lecture", "conv1", "params", 364, ["counted_one_filter"]),  # 11*11*3 + 1
    ("alexnet-lecture", "conv1", "params", 105_415_200, ["gave_macs"]),  # 55*55*96 * 11*11*3
    ("alexnet-lecture", "conv1", "output", (54, 54, 96), ["forgot_plus_one"]),  # 216/4
    ("alexnet-lecture", "conv1", "output", (21, 21, 96), ["kernel_stride_swapped"]),  # 223/11+1
    (
        "alexnet-lecture",
        "conv1",
        "output",
        (21.27, 21.27, 96),
        ["kernel_stride_swapped", "no_floor"],
    ),
    ("alexnet-lecture", "conv1", "output", (217, 217, 96), ["forgot_stride"]),  # 216/1 + 1
    ("alexnet-lecture", "conv1", "output", (55, 55, 3), ["channels_kept_from_input"]),
    ("alexnet-lecture", "conv1", "output", (227, 227, 3), ["used_input_size"]),
    ("alexnet-lecture", "pool1", "params", 5, ["pool_has_params"]),
    ("alexnet-lecture", "pool1", "params", 96 * 9 + 96, ["pool_has_params"]),
    ("alexnet-lecture", "relu1", "params", 96, ["layer_has_no_params"]),
    ("alexnet-lecture", "conv2", "output", (27, 27, 256), ["spatial_size_kept"]),  # 27 -> 23
    ("alexnet-lecture", "flatten", "output", (1, 1, 4), ["flatten_forgot_depth"]),  # 2*2
    ("alexnet-lecture", "flatten", "output", (1, 1, 256), ["flatten_forgot_spatial"]),
    ("alexnet-lecture", "flatten", "output", (2, 2, 256), ["used_input_size"]),
    ("alexnet-lecture", "fc6", "params", 256 * 4096 + 4096, ["flatten_forgot_spatial"]),
    ("alexnet-lecture", "fc7", "params", 4096 * 4096, ["forgot_bias"]),
    ("alexnet-lecture", "fc7", "params", 1024 * 4096 + 4096, ["fc_fan_in_wrong_layer"]),
    ("alexnet-lecture", "fc8", "params", 1024 * 1000 + 1000, ["fc_fan_in_wrong_layer"]),
    # alexnet-2012: conv2 is 5x5, padding 2, groups 2, on 27x27x96
    ("alexnet-2012", "conv2", "params", 5 * 5 * 96 * 256 + 256, ["forgot_groups"]),
    ("alexnet-2012", "conv2", "params", 5 * 5 * 256 + 256, ["forgot_input_depth"]),
    ("alexnet-2012", "conv2", "output", (23, 23, 256), ["forgot_padding"]),  # 27 - 5 + 1
    ("alexnet-2012", "conv2", "output", (25, 25, 256), ["padding_one_side"]),  # 27 - 5 + 2 + 1
    ("alexnet-2012", "fc6", "params", 9216 * 4096, ["forgot_bias"]),
    # zfnet-2013: conv1 7x7, stride 2, padding 1 on 224: (224 - 7 + 2)/2 + 1 = 110.5 -> 110
    ("zfnet-2013", "conv1", "output", (110.5, 110.5, 96), ["no_floor"]),
    ("zfnet-2013", "conv1", "output", (111, 111, 96), ["no_floor"]),
    ("zfnet-2013", "conv1", "output", (110, 110.5, 96), ["no_floor"]),
    ("zfnet-2013", "conv1", "output", (109.5, 109.5, 96), ["forgot_padding", "no_floor"]),
    # 109 is also forgot_plus_one; the padding, first in the catalogue, is named
    ("zfnet-2013", "conv1", "output", (109, 109, 96), ["forgot_padding"]),
    # its pools are in ceil mode: (110 - 3)/2 + 1 = 54.5 -> 55
    ("zfnet-2013", "pool1", "output", (54, 54, 96), ["forgot_ceil_mode"]),
    ("zfnet-2013", "pool1", "output", (54.5, 54.5, 96), ["no_floor"]),
    # vgg16-bn: 3x3 convs with padding 1, BatchNorm after each
    ("vgg16-bn", "conv1_1", "output", (222, 222, 64), ["forgot_padding"]),
    # 224 - 3 + 1 + 1 = 223 is padding_one_side, and forgot_plus_one too: the + 1 comes first
    ("vgg16-bn", "conv1_1", "output", (223, 223, 64), ["forgot_plus_one"]),
    ("vgg16-bn", "bn1_1", "params", 256, ["bn_running_stats_counted"]),
    ("vgg16-bn", "bn1_1", "params", 0, ["bn_has_no_params"]),
    ("vgg16-bn", "conv1_2", "params", 3 * 3 * 64 * 64, ["forgot_bias"]),
]


@pytest.mark.parametrize(("net", "layer", "quantity", "answer", "slips"), NAMED)
def test_each_slip_is_named_from_an_answer_that_makes_it(
    net: str, layer: str, quantity: Quantity, answer: Answer, slips: list[str]
) -> None:
    checked = check(builtin(net), layer, quantity, answer)
    assert not checked.correct
    assert checked.slips == slips
    assert checked.slip == slips[0]


def test_the_issues_example_forgot_bias_on_alexnet_lecture_conv1() -> None:
    checked = check(builtin("alexnet-lecture"), "conv1", "params", 34_848)
    assert checked.model_dump() == {
        "correct": False,
        "exact": 34_944,
        "slip": "forgot_bias",
        "slips": ["forgot_bias"],
        "explanation": "You counted the weights but not the biases: one per filter, 96 in all.",
        "formula": builtin_table("alexnet-lecture").layers[0].formula.params,
    }


DILATED: dict[str, Any] = {
    "name": "dilated",
    "input": {"height": 32, "width": 32, "channels": 8},
    "layers": [{"kind": "conv", "out_channels": 16, "kernel": 3, "dilation": 2}],
}


def test_dilation_slips() -> None:
    """A 3x3 kernel at dilation 2 spans 5 pixels: 32 - 5 + 1 = 28; 3*3*8*16 + 16 = 1,168."""
    practice = custom(DILATED)
    assert check(practice, "conv1", "output", (28, 28, 16)).correct
    assert check(practice, "conv1", "output", (30, 30, 16)).slips == ["forgot_dilation"]
    assert check(practice, "conv1", "params", 1168).correct
    # 5*5*8*16 + 16: as if dilation added weights
    assert check(practice, "conv1", "params", 3216).slips == ["dilation_adds_weights"]


@pytest.mark.parametrize("net_id", builtin_registry().ids())
def test_a_correct_answer_is_never_a_slip(net_id: str) -> None:
    practice = builtin(net_id)
    for row in practice.table.layers:
        output = (row.output.width, row.output.height, row.output.channels)
        for quantity, answer in (("output", output), ("params", row.params)):
            checked = check(practice, row.name, quantity, answer)  # type: ignore[arg-type]
            assert checked.correct, (row.name, quantity, checked)
            assert (checked.slip, checked.slips) == (None, [])
        floats = tuple(float(value) for value in output)
        assert check(practice, row.name, "output", floats).correct  # type: ignore[arg-type]
        assert check(practice, row.name, "params", float(row.params)).correct


def test_a_wrong_answer_no_slip_explains_says_which_part_is_off() -> None:
    checked = check(builtin("alexnet-lecture"), "conv2", "output", (25, 25, 256))
    assert not checked.correct
    assert checked.slip is None
    assert checked.exact == [23, 23, 256]
    assert checked.explanation.startswith("Not quite: W and H are off.")


def test_unrounded_answers_agree_to_the_decimals_typed() -> None:
    """(227 - 4)/11 + 1 = 21.2727...: kernel and stride swapped, not rounded down."""
    practice = builtin("alexnet-lecture")
    for typed in (21.27, 21.2727, 21.3, 21.272727):
        assert check(practice, "conv1", "output", (typed, typed, 96)).slips == [
            "kernel_stride_swapped",
            "no_floor",
        ], typed
    for typed in (21.28, 21.2, 21.5):  # 21.2 is cut, not rounded
        assert check(practice, "conv1", "output", (typed, typed, 96)).slip is None, typed


def test_a_slip_that_cannot_happen_in_this_layer_is_never_named() -> None:
    """alexnet-lecture's conv1 has no padding: 55 with padding forgotten is still 55, right."""
    practice = builtin("alexnet-lecture")
    named = {
        code for w in range(1, 230) for code in check(practice, "conv1", "output", (w, w, 96)).slips
    }
    assert "forgot_padding" not in named
    assert "padding_one_side" not in named
    assert "forgot_dilation" not in named
    assert {"forgot_plus_one", "kernel_stride_swapped", "forgot_stride"} <= named


def test_an_unknown_layer_lists_the_layers() -> None:
    with pytest.raises(UnknownLayer) as raised:
        check(builtin("alexnet-lecture"), "conv9", "output", (1, 1, 1))
    assert raised.value.known[:3] == ["conv1", "relu1", "pool1"]


def test_the_plan_asks_what_needs_computing_and_the_rest_once() -> None:
    steps = {step.name: step for step in plan(builtin("alexnet-lecture"))}
    assert steps["conv1"].asks == ["output", "params"]
    assert steps["relu1"].asks == ["output", "params"]  # the first ReLU: asked once
    assert steps["relu2"].asks == []
    assert steps["relu2"].given == {"output": [23, 23, 256], "params": 0}
    assert steps["relu2"].given_why["params"] == "No weights here: 0 parameters."
    assert steps["pool1"].asks == ["output", "params"]
    assert steps["pool2"].asks == ["output"]  # a pool's 0 parameters: asked once
    assert steps["pool2"].given == {"params": 0}
    assert steps["fc6"].vector
    assert not steps["pool3"].vector
    assert steps["flatten"].vector
    assert steps["conv1"].settings == {"filters": 96, "kernel": 11, "stride": 4, "padding": 0}
    assert steps["conv2"].input.model_dump() == {"height": 27, "width": 27, "channels": 96}
    bn = {step.name: step for step in plan(builtin("vgg16-bn"))}
    assert [bn["bn1_1"].asks, bn["bn1_2"].asks] == [["output", "params"], []]
    assert bn["bn1_2"].given == {"output": [224, 224, 64], "params": 128}


def test_the_plan_shows_settings_that_differ_from_torchs_defaults() -> None:
    grouped = {step.name: step for step in plan(builtin("alexnet-2012"))}["conv2"].settings
    assert grouped == {"filters": 256, "kernel": 5, "stride": 1, "padding": 2, "groups": 2}
    pool = {step.name: step for step in plan(builtin("zfnet-2013"))}["pool1"].settings
    assert pool == {"kernel": 3, "stride": 2, "padding": 0, "ceil_mode": True}


def test_the_catalogue_names_each_slip_once_per_quantity() -> None:
    keys = [(slip.code, slip.quantity) for slip in SLIPS]
    assert len(keys) == len(set(keys))
    assert len(catalogue()) == len(SLIPS)
    assert {"forgot_bias", "forgot_input_depth", "no_floor", "kernel_stride_swapped"} <= set(
        slip_codes()
    )
    assert {"forgot_padding", "pool_has_params"} <= set(slip_codes())
    for slip in SLIPS:
        ways = [slip.changes is not None, slip.reads is not None, slip.any_other, slip.rounding]
        assert sum(ways) == 1, slip.code


# -- random specs: the test's own arithmetic names the slipped answers ----------------------------


def axis(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class ConvCase:
    height: int
    width: int
    channels: int
    filters: int
    kernel: int
    stride: int
    padding: int
    dilation: int
    groups: int
    bias: bool

    def spec(self) -> dict[str, Any]:
        layer = {
            "kind": "conv",
            "out_channels": self.filters,
            "kernel": self.kernel,
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
            "bias": self.bias,
        }
        volume = {"height": self.height, "width": self.width, "channels": self.channels}
        return {"name": "random", "input": volume, "layers": [layer]}

    def out(self, **changes: int) -> tuple[int, int]:
        k = changes.get("kernel", self.kernel)
        s = changes.get("stride", self.stride)
        p = changes.get("padding", self.padding)
        d = changes.get("dilation", self.dilation)
        grow = changes.get("grow", 0)
        return (axis(self.width + grow, k, s, p, d), axis(self.height + grow, k, s, p, d))

    def params(self, kernel: int | None = None, depth: int | None = None, filters: int = 0) -> int:
        k = kernel or self.kernel
        f = filters or self.filters
        per_filter = depth if depth is not None else self.channels // self.groups
        return k * k * per_filter * f + (f if self.bias else 0)


@st.composite
def conv_cases(draw: st.DrawFn) -> ConvCase:
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    return ConvCase(
        height=draw(st.integers(1, 60)),
        width=draw(st.integers(1, 60)),
        channels=groups * draw(st.integers(1, 8)),
        filters=groups * draw(st.integers(1, 12)),
        kernel=draw(st.integers(1, 7)),
        stride=draw(st.integers(1, 5)),
        padding=draw(st.integers(0, 3)),
        dilation=draw(st.sampled_from([1, 1, 2, 3])),
        groups=groups,
        bias=draw(st.booleans()),
    )


def decimals(fraction: Fraction) -> list[float]:
    """The fraction as a student might type it: rounded, half up, to one or two decimals."""
    exact = Decimal(fraction.numerator) / Decimal(fraction.denominator)
    return [float(exact.quantize(Decimal(step), ROUND_HALF_UP)) for step in ("0.1", "0.01")]


Volume = tuple[float, float, int]
# A slip's wrong answers: each with whether it is also unrounded (which names no_floor too).
Oracle = dict[str, list[tuple[Any, bool]]]


def volumes(
    case: ConvCase, depth: int, width: int, height: int, **changes: int
) -> list[tuple[Volume, bool]]:
    """The output of the conv changed as given, on a width x height input: rounded down, and,
    where a division is not exact, each W and H also rounded up or to two decimals (which is
    no_floor as well). None at all when the changed conv has no output (a side below 1): such
    a layer cannot run, so neither torch nor the checker can work it out."""
    k = changes.get("kernel", case.kernel)
    s = changes.get("stride", case.stride)
    p = changes.get("padding", case.padding)
    d = changes.get("dilation", case.dilation)
    span = d * (k - 1) + 1 + changes.get("shorten", 0)
    axes = []
    for size in (width, height):
        fraction = Fraction(size + 2 * p - span, s) + 1
        if fraction < 1:
            return []
        unrounded = {math.ceil(fraction), *decimals(fraction)} - {math.floor(fraction)}
        axes.append([(math.floor(fraction), False)] + [(value, True) for value in unrounded])
    return [
        ((w, h, depth), w_unrounded or h_unrounded)
        for (w, w_unrounded), (h, h_unrounded) in itertools.product(*axes)
    ]


def conv_output_slips(case: ConvCase) -> Oracle:
    """Each slip's wrong outputs, by the formula, where the slip can happen."""
    c, f, w, h = case.channels, case.filters, case.width, case.height
    same = {"depth": f, "width": w, "height": h}
    slips: Oracle = {
        "no_floor": [(v, True) for v, unrounded in volumes(case, **same) if unrounded],
        "forgot_plus_one": volumes(case, **same, shorten=case.stride),
        "spatial_size_kept": [((w, h, f), False)],
        "used_input_size": [((w, h, c), False)],
    }
    if case.padding:
        slips["forgot_padding"] = volumes(case, **same, padding=0)
        slips["padding_one_side"] = volumes(case, **same, shorten=case.padding)
    if case.kernel != case.stride:
        slips["kernel_stride_swapped"] = volumes(
            case, **same, kernel=case.stride, stride=case.kernel
        )
    if case.stride > 1:
        slips["forgot_stride"] = volumes(case, **same, stride=1)
    if case.dilation > 1:
        slips["forgot_dilation"] = volumes(case, **same, dilation=1)
    if c != f:
        slips["channels_kept_from_input"] = [(v, u) for v, u in volumes(case, c, w, h)]
    return slips


def conv_params_slips(case: ConvCase, output: tuple[int, int]) -> Oracle:
    depth = case.channels // case.groups
    slips = {"gave_macs": [output[0] * output[1] * case.filters * case.kernel**2 * depth]}
    if case.bias:
        slips["forgot_bias"] = [case.kernel**2 * depth * case.filters]
    if depth > 1:
        slips["forgot_input_depth"] = [case.params(depth=1)]
    if case.groups == 1 and case.filters > 1:
        slips["counted_one_filter"] = [case.kernel**2 * case.channels + int(case.bias)]
    if case.groups > 1:
        slips["forgot_groups"] = [case.params(depth=case.channels)]
    if case.dilation > 1:
        slips["dilation_adds_weights"] = [case.params(kernel=case.dilation * (case.kernel - 1) + 1)]
    return {code: [(value, False) for value in values] for code, values in slips.items()}


def assert_explains(
    practice: Practice,
    quantity: Quantity,
    exact: Any,
    oracle: Oracle,
    agrees: Any,
    layer: str = "conv1",
) -> None:
    """Every slipped answer is called wrong and named by a slip; when one slip is named (with
    or without no_floor), this answer is one of that slip's own (two slips may give the same
    number: either is fair). Pairs of slips are checked by hand above."""
    for code, answers in oracle.items():
        for answer, _ in answers:
            if agrees(answer, exact) or (quantity == "output" and min(answer[:2]) < 1):
                continue  # the slip changes nothing here, or gives no volume at all
            checked = check(practice, layer, quantity, answer)
            assert not checked.correct, (code, answer)
            assert checked.slip is not None, (code, answer, checked)
            unrounded = "no_floor" in checked.slips
            rest = [named for named in checked.slips if named != "no_floor"]
            if len(rest) > 1:
                continue
            named = rest[0] if rest else "no_floor"
            explained = [a for a, u in oracle.get(named, []) if u == unrounded or not rest]
            assert any(agrees(answer, other) for other in explained), (code, answer, checked.slips)


def _same_volume(a: tuple[float, float, int], b: Any) -> bool:
    return tuple(float(x) for x in a) == tuple(float(x) for x in b)


def _practice_or_skip(spec: dict[str, Any]) -> Practice:
    try:
        return custom(spec)
    except SpecInvalid:
        assume(False)
        raise  # unreachable: assume(False) stops the example


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(conv_cases())
def test_random_convs_every_slip_is_recognised_and_right_is_right(case: ConvCase) -> None:
    practice = _practice_or_skip(case.spec())
    row = practice.table.layers[0]
    w, h = case.out()
    assert (row.output.width, row.output.height, row.params) == (w, h, case.params())
    assert check(practice, "conv1", "output", (w, h, case.filters)).correct
    assert check(practice, "conv1", "params", case.params()).correct
    assert_explains(practice, "output", (w, h, case.filters), conv_output_slips(case), _same_volume)
    assert_explains(
        practice, "params", case.params(), conv_params_slips(case, (w, h)), lambda a, b: a == b
    )


@st.composite
def pool_specs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, int | bool]]:
    kernel = draw(st.integers(1, 5))
    layer: dict[str, int | bool] = {
        "kernel": kernel,
        "stride": draw(st.integers(1, 4)),
        "padding": draw(st.integers(0, kernel // 2)),
        "ceil_mode": draw(st.booleans()),
    }
    size = draw(st.integers(kernel, 40))
    spec = {
        "name": "pool",
        "input": {"height": size, "width": size, "channels": draw(st.integers(1, 9))},
        "layers": [
            {"kind": draw(st.sampled_from(["maxpool", "avgpool"])), "name": "conv1", **layer}
        ],
    }
    return spec, layer


def torch_pool_axis(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    span = size + 2 * padding - kernel
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(pool_specs(), st.integers(1, 10**6))
def test_random_pools_slips(
    spec_and_layer: tuple[dict[str, Any], dict[str, Any]], count: int
) -> None:
    spec, layer = spec_and_layer
    practice = _practice_or_skip(spec)
    size, depth = spec["input"]["height"], spec["input"]["channels"]
    out = torch_pool_axis(
        size, layer["kernel"], layer["stride"], layer["padding"], layer["ceil_mode"]
    )
    assert check(practice, "conv1", "output", (out, out, depth)).correct
    assert check(practice, "conv1", "params", 0).correct
    assert check(practice, "conv1", "params", count).slip == "pool_has_params"
    oracle: Oracle = {"used_input_size": [((size, size, depth), False)]}
    k, s, p, ceil = layer["kernel"], layer["stride"], layer["padding"], layer["ceil_mode"]

    def pooled(**changes: int) -> list[tuple[Any, bool]]:
        """The changed pool's output as torch gives it and, where the division is not exact,
        W and H unrounded (and, in floor mode, rounded up): no_floor as well."""
        kernel, stride = changes.get("kernel", k), changes.get("stride", s)
        padding, ceil_mode = changes.get("padding", p), bool(changes.get("ceil_mode", ceil))
        side = torch_pool_axis(size, kernel, stride, padding, ceil_mode)
        if side < 1:
            return []
        fraction = Fraction(size + 2 * padding - kernel, stride) + 1
        unrounded = set()
        if fraction.denominator > 1:
            unrounded = set(decimals(fraction))
            if not ceil_mode:
                unrounded.add(math.ceil(fraction))
        options = [(side, False)] + [(value, True) for value in unrounded - {side}]
        return [
            ((w, h, depth), wu or hu) for (w, wu), (h, hu) in itertools.product(options, options)
        ]

    oracle["no_floor"] = [(volume, True) for volume, unrounded in pooled() if unrounded]
    # W - K + 2P shortened by the stride (no + 1) or by P (padding on one side): the same as a
    # kernel that much wider, which is how torch's rule meets them.
    oracle["forgot_plus_one"] = pooled(kernel=k + s)
    if ceil:
        oracle["forgot_ceil_mode"] = pooled(ceil_mode=False)
    if p:
        oracle["forgot_padding"] = pooled(padding=0)
        oracle["padding_one_side"] = pooled(kernel=k + p)
    if s > 1:
        oracle["forgot_stride"] = pooled(stride=1)
    if k != s and 2 * p <= s:  # torch refuses a padding over half the kernel
        oracle["kernel_stride_swapped"] = pooled(kernel=s, stride=k)
    assert_explains(practice, "output", (out, out, depth), oracle, _same_volume)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 6), st.integers(1, 6), st.integers(1, 12), st.integers(1, 50), st.integers(1, 50)
)
def test_random_fc_heads_fan_in_slips(h: int, w: int, c: int, units1: int, units2: int) -> None:
    spec = {
        "name": "head",
        "input": {"height": h, "width": w, "channels": c},
        "layers": [
            {"kind": "flatten"},
            {"kind": "linear", "name": "fc1", "out_features": units1},
            {"kind": "relu"},
            {"kind": "linear", "name": "fc2", "out_features": units2},
        ],
    }
    practice = custom(spec)
    fan_in = h * w * c
    assert check(practice, "flatten1", "output", (1, 1, fan_in)).correct
    assert check(practice, "fc1", "params", fan_in * units1 + units1).correct
    assert check(practice, "fc2", "params", units1 * units2 + units2).correct
    flat: Oracle = {"used_input_size": [((w, h, c), False)]}
    if h * w > 1:
        flat["flatten_forgot_spatial"] = [((1, 1, c), False)]
    if c > 1:
        flat["flatten_forgot_depth"] = [((1, 1, h * w), False)]
    assert_explains(practice, "output", (1, 1, fan_in), flat, _same_volume, "flatten1")
    fc1: Oracle = {
        "forgot_bias": [(fan_in * units1, False)],
        "gave_macs": [(fan_in * units1, False)],
    }
    if h * w > 1:
        fc1["flatten_forgot_spatial"] = [(c * units1 + units1, False)]
    assert_explains(practice, "params", fan_in * units1 + units1, fc1, int.__eq__, "fc1")
    fc2: Oracle = {"forgot_bias": [(units1 * units2, False)]}
    if fan_in != units1:
        fc2["fc_fan_in_wrong_layer"] = [(fan_in * units2 + units2, False)]
    assert_explains(practice, "params", units1 * units2 + units2, fc2, int.__eq__, "fc2")
    if fan_in != units1 and units1 != fan_in + 1:  # else forgot_bias gives the same number
        wrong_layer = check(practice, "fc2", "params", fan_in * units2 + units2)
        assert wrong_layer.slip == "fc_fan_in_wrong_layer"
        assert f"{fan_in:,}" in wrong_layer.explanation


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 512))
def test_batchnorm_params(channels: int) -> None:
    spec = {
        "name": "bn",
        "input": {"height": 4, "width": 4, "channels": channels},
        "layers": [{"kind": "batchnorm"}],
    }
    practice = custom(spec)
    assert check(practice, "batchnorm1", "params", 2 * channels).correct
    assert check(practice, "batchnorm1", "params", 4 * channels).slip == "bn_running_stats_counted"
    assert check(practice, "batchnorm1", "params", 0).slip == "bn_has_no_params"
    assert check(practice, "batchnorm1", "output", (4, 4, channels)).correct
