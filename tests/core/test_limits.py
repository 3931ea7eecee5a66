"""The server's limits on a user's spec: sizes first, then derived totals; all as SpecInvalid."""

import copy
from typing import Any

import pytest

from app.core.calculator import analyze
from app.core.errors import SpecInvalid, parse_json
from app.core.limits import SpecLimits

LIMITS = SpecLimits()
SMALL: dict[str, Any] = {
    "name": "small",
    "input": {"height": 32, "width": 32, "channels": 3},
    "layers": [{"kind": "conv", "out_channels": 8, "kernel": 3}],
}


def issues(raw: dict[str, Any], limits: SpecLimits = LIMITS) -> list[tuple[Any, ...]]:
    with pytest.raises(SpecInvalid) as caught:
        analyze(raw, limits)
    return [(i.index, i.field, i.message) for i in caught.value.issues]


def test_within_limits_passes() -> None:
    assert analyze(SMALL, LIMITS).totals.params == 3 * 3 * 3 * 8 + 8


def test_129_layers() -> None:
    raw = dict(SMALL, layers=[{"kind": "relu"}] * 129)
    assert issues(raw) == [(None, "layers", "129 is over the limit of 128")]


def test_a_billion_filters() -> None:
    raw = dict(SMALL, layers=[{"kind": "conv", "out_channels": 10**9, "kernel": 3}])
    assert issues(raw) == [(0, "out_channels", "1,000,000,000 is over the limit of 8,192")]


def test_huge_input_lists_both_sides() -> None:
    raw = dict(SMALL, input={"height": 3, "width": 10**6, "channels": 10**6})
    assert issues(raw) == [
        (None, "input.width", "1,000,000 is over the limit of 4,096"),
        (None, "input.channels", "1,000,000 is over the limit of 8,192"),
    ]


def test_kernel_stride_dilation_bounds() -> None:
    conv = {"kind": "conv", "out_channels": 8, "kernel": 33, "stride": 17, "dilation": 9}
    raw = dict(SMALL, layers=[conv])
    assert [field for _, field, _ in issues(raw)] == ["kernel", "stride", "dilation"]


def test_totals_are_checked_after_the_arithmetic() -> None:
    raw = copy.deepcopy(SMALL)
    raw["input"] = {"height": 4096, "width": 4096, "channels": 3}
    raw["layers"] = [{"kind": "conv", "out_channels": 64, "kernel": 3, "padding": 1}]
    assert issues(raw) == [(0, "activations", "1,073,741,824 is over the limit of 100,000,000")]


def test_params_limit_is_a_setting() -> None:
    tight = SpecLimits(max_params=100)
    assert issues(SMALL, tight) == [(None, "totals.params", "224 is over the limit of 100")]


def test_deep_nesting_and_huge_integers_are_value_errors() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="digits"):
        parse_json('{"n": ' + "9" * 5000 + "}")


def test_an_unnamed_layer_over_a_limit_is_named_as_elsewhere() -> None:
    raw = dict(
        SMALL, layers=[{"kind": "relu"}, {"kind": "conv", "out_channels": 9000, "kernel": 1}]
    )
    with pytest.raises(SpecInvalid) as caught:
        analyze(raw, LIMITS)
    assert [(i.index, i.name) for i in caught.value.issues] == [(1, "conv1")]


FIGURED: dict[str, Any] = {
    **SMALL,
    "lecture": [{"ref": 1, "says": "x", "quantity": "total_params", "value": 1}],
    "layers": [
        {
            "kind": "conv",
            "out_channels": 8,
            "kernel": 3,
            "lecture": [{"ref": 2, "says": "y", "quantity": "weights", "factors": [3, 3, 3, 8]}],
        }
    ],
}


def _figured(spec_value: object = 1, factors: object = (3, 3, 3, 8)) -> dict[str, Any]:
    raw = copy.deepcopy(FIGURED)
    raw["lecture"][0]["value"] = spec_value
    raw["layers"][0]["lecture"][0]["factors"] = list(factors)  # type: ignore[call-overload]
    return raw


def test_arithmetic_a_figure_cannot_do_names_it_even_without_limits() -> None:
    """Float overflow and Python's 4,300-digit limit, reached with no limits set (the CLI's
    analyze): SpecInvalid naming the figure and its field, never a traceback."""
    with pytest.raises(SpecInvalid) as overflow:
        analyze(
            _figured(spec_value=10**400)
            | {
                "lecture": [
                    {
                        "ref": 1,
                        "says": "x",
                        "quantity": "total_params",
                        "value": 10**400,
                        "unit": "million",
                    }
                ]
            }
        )
    assert [(i.index, i.field) for i in overflow.value.issues] == [(None, "lecture.0.value")]
    with pytest.raises(SpecInvalid) as digits:
        analyze(_figured(factors=[10**1000] * 5))
    assert [(i.index, i.field) for i in digits.value.issues] == [(0, "lecture.0.factors")]


def test_figure_limits_name_layer_figure_and_field() -> None:
    assert issues(_figured(spec_value=-(10**400))) == [
        (
            None,
            "lecture.0.value",
            "-a number of 41 digits or more is over the limit of 1,000,000,000,000,000",
        )
    ]
    assert issues(_figured(factors=[10**8] * 3)) == [
        (0, "lecture.0.factors", "their product is over the limit of 1,000,000,000,000,000")
    ]


def test_an_answer_over_its_bound_is_refused() -> None:
    small = SpecLimits(max_answer_bytes=1024)
    raw = dict(SMALL, layers=[{"kind": "conv", "out_channels": 8, "kernel": 1}] * 4)
    [(index, field, message)] = issues(raw, small)
    assert (index, field, message[:19]) == (None, None, "the table would be ")
    assert message.endswith("bytes, over the limit of 1,024")
