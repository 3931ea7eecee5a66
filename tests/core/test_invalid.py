"""Invalid specs fail naming the layer (index and name), the field and the numbers."""

import copy
from typing import Any

import pytest

from app.core.calculator import analyze
from app.core.errors import SpecInvalid, parse_json
from app.specs.models import LAYER_KINDS

BASE: dict[str, Any] = {
    "name": "case",
    "input": {"height": 8, "width": 8, "channels": 4},
    "layers": [],
}


def spec_with(*layers: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    spec["layers"] = list(layers)
    return spec


def only_issue(spec: dict[str, Any]) -> tuple[int | None, str | None, str | None, str]:
    with pytest.raises(SpecInvalid) as caught:
        analyze(spec)
    assert len(caught.value.issues) == 1
    issue = caught.value.issues[0]
    return issue.index, issue.name, issue.field, issue.message


def test_kernel_larger_than_the_padded_input() -> None:
    spec = spec_with({"kind": "conv", "name": "big", "out_channels": 2, "kernel": 11, "padding": 1})
    assert only_issue(spec) == (
        0,
        "big",
        "kernel",
        "kernel 11 is larger than the padded input height 8 + 2*1 = 10",
    )


def test_dilated_kernel_is_measured_dilated() -> None:
    spec = spec_with({"kind": "conv", "out_channels": 2, "kernel": 3, "dilation": 4})
    _, name, field, message = only_issue(spec)
    assert (name, field) == ("conv1", "kernel")
    assert "dilated to 9" in message


def test_pool_output_of_zero() -> None:
    spec = spec_with(
        {"kind": "maxpool", "kernel": 2},
        {"kind": "maxpool", "kernel": 2},
        {"kind": "maxpool", "kernel": 2},
        {"kind": "maxpool", "name": "one-too-many", "kernel": 2},
    )
    assert only_issue(spec) == (
        3,
        "one-too-many",
        "kernel",
        "output height would be ⌊(1 - 2 + 2*0) / 2⌋ + 1 = 0, less than 1",
    )


def test_pool_padding_over_half_the_kernel() -> None:
    spec = spec_with({"kind": "avgpool", "kernel": 3, "padding": 2})
    assert only_issue(spec)[2:] == (
        "padding",
        "padding 2 is more than half the kernel 3 (torch refuses)",
    )


def test_channels_not_divisible_by_groups() -> None:
    spec = spec_with({"kind": "conv", "name": "g", "out_channels": 6, "kernel": 1, "groups": 3})
    assert only_issue(spec) == (0, "g", "groups", "input channels 4 are not divisible by groups 3")


def test_linear_before_flatten() -> None:
    spec = spec_with({"kind": "linear", "name": "fc", "out_features": 3})
    assert only_issue(spec) == (
        0,
        "fc",
        "kind",
        "linear layer before flatten: add a flatten layer first",
    )


def test_conv_after_flatten() -> None:
    spec = spec_with({"kind": "flatten"}, {"kind": "conv", "out_channels": 2, "kernel": 1})
    assert only_issue(spec)[:3] == (1, "conv1", "kind")


def test_unknown_kind_lists_the_known_ones() -> None:
    spec = spec_with({"kind": "relu"}, {"kind": "attention", "name": "transformer"})
    index, name, field, message = only_issue(spec)
    assert (index, name, field) == (1, "transformer", "kind")
    assert message.startswith('unknown kind "attention"; expected one of: conv, maxpool')


def test_every_schema_error_is_listed_with_its_layer() -> None:
    spec = spec_with(
        {"kind": "conv", "name": "a", "out_channels": "8", "kernel": 3},
        {"kind": "relu"},
        {"kind": "conv", "name": "b", "out_channels": 8},
        {"kind": "maxpool", "kernel": 2, "stide": 2},
    )
    with pytest.raises(SpecInvalid) as caught:
        analyze(spec)
    found = [(i.index, i.name, i.field, i.message) for i in caught.value.issues]
    assert found == [
        (
            0,
            "a",
            "out_channels",
            'must be a whole number, not the text "8" (write 8, without quotes)',
        ),
        (2, "b", "kernel", "required field is missing"),
        (
            3,
            None,
            "stide",
            "unknown field: a maxpool layer has no such field; "
            "its fields are: kernel, stride, padding, ceil_mode",
        ),
    ]


# What a student types into a form, and what the check says: plain words with the numbers,
# never pydantic's own text ("Input should be greater than or equal to 1").
@pytest.mark.parametrize(
    ("layer", "field", "message"),
    [
        ({"out_channels": -5}, "out_channels", "must be at least 1, but is -5"),
        ({"kernel": 0}, "kernel", "must be at least 1, but is 0"),
        ({"padding": -1}, "padding", "must be at least 0, but is -1"),
        ({"stride": 2.5}, "stride", "must be a whole number, not 2.5"),
        (
            {"kernel": 3.0},
            "kernel",
            "must be a whole number, not 3.0 (write 3, without a decimal point)",
        ),
        ({"groups": True}, "groups", "must be a whole number, not true"),
        ({"kernel": "abc"}, "kernel", 'must be a whole number, not the text "abc"'),
        ({"kernel": "<b>3</b>"}, "kernel", "must be a whole number, not text"),
        ({"kernel": None}, "kernel", "must be a whole number, not null"),
        ({"bias": 1}, "bias", "must be true or false, not 1"),
    ],
)
def test_a_bad_conv_field_is_named_in_plain_words(
    layer: dict[str, Any], field: str, message: str
) -> None:
    conv = {"kind": "conv", "name": "c", "out_channels": 2, "kernel": 1, **layer}
    assert only_issue(spec_with(conv)) == (0, "c", field, message)


@pytest.mark.parametrize(
    ("spec_part", "field", "message"),
    [
        (
            {"input": {"height": 8, "width": -5, "channels": 3}},
            "input.width",
            "must be at least 1, but is -5",
        ),
        ({"input": 5}, "input", "must be an object, not 5"),
        ({"name": ""}, "name", "must not be empty"),
        ({"name": "n" * 70}, "name", "must have at most 64 characters, but has 70"),
        ({"layers": []}, "layers", "needs at least 1 layer, but has 0"),
        ({"layers": "conv"}, "layers", 'must be a list, not the text "conv"'),
    ],
)
def test_a_bad_spec_field_is_named_in_plain_words(
    spec_part: dict[str, Any], field: str, message: str
) -> None:
    spec = {**spec_with({"kind": "relu"}), **spec_part}
    assert only_issue(spec) == (None, None, field, message)


@pytest.mark.parametrize(
    ("layer", "field", "message"),
    [
        ({"kind": "dropout", "p": 1.5}, "p", "must be at most 1, but is 1.5"),
        ({"kind": "batchnorm", "eps": 0}, "eps", "must be more than 0, but is 0"),
        ({"kind": "lrn", "size": 5, "alpha": "x"}, "alpha", 'must be a number, not the text "x"'),
        (
            {"kind": "relu", "inplace": True},
            "inplace",
            "unknown field: a relu layer has no such field; it takes only a name",
        ),
        (5, None, 'must be an object such as {"kind": "relu"}, not 5'),
        (
            {"kind": "Conv"},
            "kind",
            'unknown kind "Conv"; expected one of: ' + ", ".join(LAYER_KINDS),
        ),
        ({"kind": "<i>"}, "kind", "unknown kind; expected one of: " + ", ".join(LAYER_KINDS)),
        ({}, "kind", "missing 'kind'; expected one of: " + ", ".join(LAYER_KINDS)),
    ],
)
def test_other_layer_problems_in_plain_words(layer: Any, field: str | None, message: str) -> None:
    index, _, got_field, got = only_issue(spec_with(layer))
    assert (index, got_field, got) == (0, field, message)


def test_no_message_is_pydantics_own_text() -> None:
    """Every kind of schema error a layer can meet reads as our words, not pydantic's."""
    layers = [
        {"kind": "conv", "out_channels": -1, "kernel": "x", "bias": "yes", "stride": 0.5},
        {"kind": "maxpool", "kernel": 0, "ceil_mode": 2, "padding": -1},
        {"kind": "dropout", "p": -0.5},
        {"kind": "lrn", "size": [], "beta": {}},
        {"kind": "linear"},
        {"kind": "relu", "name": ""},
        {"kind": "relu", "name": "x" * 65},
    ]
    with pytest.raises(SpecInvalid) as caught:
        analyze(
            {"name": "x", "input": {"height": 0, "width": "8", "channels": 1.5}, "layers": layers}
        )
    messages = [issue.message for issue in caught.value.issues]
    assert len(messages) == 16
    for message in messages:
        assert not message.startswith(
            ("Input should", "String should", "Field required", "List should")
        ), message


def test_missing_top_level_fields() -> None:
    with pytest.raises(SpecInvalid) as caught:
        analyze({"layers": [{"kind": "relu"}]})
    assert {(i.index, i.field) for i in caught.value.issues} == {(None, "name"), (None, "input")}


def test_duplicate_layer_names() -> None:
    spec = spec_with({"kind": "relu", "name": "x"}, {"kind": "relu", "name": "x"})
    assert only_issue(spec) == (1, "x", "name", "the name is already used by layer 0")


@pytest.mark.parametrize(
    "text", ['{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '{"a": 1e400}']
)
def test_json_with_nan_or_infinity_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"not valid JSON|out of range"):
        parse_json(text)


def test_finite_json_numbers_still_parse() -> None:
    assert parse_json('{"alpha": 1e-4, "n": 3}') == {"alpha": 1e-4, "n": 3}


def test_a_message_never_carries_a_traceback() -> None:
    spec = spec_with({"kind": "conv", "out_channels": 2, "kernel": 99})
    with pytest.raises(SpecInvalid) as caught:
        analyze(spec)
    assert "Traceback" not in str(caught.value)
    assert str(caught.value).startswith("layer 0 (conv1), field 'kernel': kernel 99")


@pytest.mark.parametrize(
    ("figure", "message"),
    [
        ({"quantity": "depth", "value": 1}, "quantity 'depth' does not apply to a layer"),
        ({"quantity": "kernel", "value": 1}, "kernel and stride figures need a conv or pooling"),
        ({"quantity": "output", "value": 1}, "output is a volume: give 'value' as [h, w, d]"),
        ({"quantity": "params", "value": [1, 2, 3]}, "params is a count: give a number"),
    ],
)
def test_a_lecture_figure_must_fit_its_layer(figure: dict[str, Any], message: str) -> None:
    layer = {"kind": "relu", "name": "r", "lecture": [{"ref": 1, "says": "x", **figure}]}
    index, name, field, text = only_issue(spec_with(layer))
    assert (index, name) == (0, "r")
    assert field in {"lecture", "lecture.0"}
    assert text.startswith(message)


def test_a_whole_net_figure_must_be_about_the_whole_net() -> None:
    spec = spec_with({"kind": "relu"})
    spec["lecture"] = [{"ref": 1, "says": "x", "quantity": "output", "value": [1, 1, 1]}]
    assert only_issue(spec)[2:] == (
        "lecture",
        "quantity 'output' does not apply to a whole net; use one of conv_kernel, conv_params, "
        "depth, fc_params, input, total_params",
    )
