"""What-if: the lecture's preset gives its numbers exactly; the edits change only what they say
(properties over every built-in net and random specs); the figures are worked out here by hand,
independently of the calculator."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.calculator import analyze, builtin_table, validate_spec
from app.core.errors import SpecInvalid
from app.core.limits import SpecLimits
from app.core.whatif import (
    NO_SHRINKAGE,
    Edits,
    about,
    about_bytes,
    apply_edits,
    parse_edits,
    pool_names,
    preset_of,
    presets,
    what_if,
)
from app.specs import builtin_registry
from app.specs.models import Conv, Linear

NETS = builtin_registry().ids()
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(net: str, edits: Edits) -> Any:
    return what_if(builtin_registry().get(net), builtin_table(net), edits, SpecLimits())


def test_the_lectures_no_shrinkage_preset_is_41_9_billion_weights_168_gb() -> None:
    spec = builtin_registry().get("alexnet-lecture")
    preset = preset_of(spec, NO_SHRINKAGE)
    assert preset.edits == Edits(
        remove_pools=["pool1", "pool2", "pool3"], conv1_stride=1, input_side=220
    )
    result = run("alexnet-lecture", preset.edits)
    rows = {row.name: row for row in result.table.layers}
    # 220 - 10 (conv1 11x11) - 4 (conv2 5x5) - 2 - 2 - 2 (conv3-5 3x3) = 200
    assert [rows["conv5"].output.width, rows["conv5"].output.height] == [200, 200]
    assert rows["conv5"].output.channels == 256
    assert rows["flatten"].output.channels == 200 * 200 * 256 == 10_240_000
    assert rows["fc6"].weights == 200 * 200 * 256 * 4096 == 41_943_040_000
    assert rows["fc6"].params == 41_943_040_000 + 4096
    headline = result.headline
    assert (headline.layer, headline.weights) == ("fc6", 41_943_040_000)
    assert headline.fp32_bytes == 4 * 41_943_040_000 == 167_772_160_000
    assert headline.weights_text == "about 41.9 billion"
    assert headline.fp32_text == "about 168 GB at fp32"
    # the original: FC6 has 1024 * 4096 weights
    assert {row.name: row for row in result.original.layers}["fc6"].weights == 1024 * 4096


def test_the_lecture_preset_belongs_to_the_lectures_alexnet_only() -> None:
    for net in NETS:
        ids = [preset.id for preset in presets(builtin_registry().get(net))]
        assert (NO_SHRINKAGE in ids) == (net == "alexnet-lecture")
    with pytest.raises(SpecInvalid, match="no preset 'no-shrinkage'"):
        preset_of(builtin_registry().get("vgg16"), NO_SHRINKAGE)


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (41_943_040_000, "about 41.9 billion"),
        (37_748_736, "about 37.7 million"),
        (4096, "4,096"),
        (2 * 10**12, "about 2.0 trillion"),
    ],
)
def test_about_says_a_count_as_a_teacher_does(count: int, text: str) -> None:
    assert about(count) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [(167_772_160_000, "about 168 GB"), (16_384_000, "about 16.4 MB"), (999, "999 bytes")],
)
def test_about_bytes_in_decimal_units(size: int, text: str) -> None:
    assert about_bytes(size) == text


@pytest.mark.parametrize("net", NETS)
def test_no_edit_is_the_net_itself(net: str) -> None:
    result = run(net, Edits())
    original = builtin_table(net)
    assert [row.params for row in result.table.layers] == [row.params for row in original.layers]
    assert result.table.totals == original.totals
    assert {stage.status for stage in result.comparison.stages} == {"same"}
    assert all(total.difference == 0 for total in result.comparison.totals)


@pytest.mark.parametrize("net", NETS)
def test_each_preset_computes_and_its_headline_is_the_heaviest_layer(net: str) -> None:
    for preset in presets(builtin_registry().get(net)):
        result = run(net, preset.edits)
        heaviest = max(row.weights for row in result.table.layers)
        assert result.headline.weights == heaviest
        assert result.headline.fp32_bytes == 4 * heaviest


@PROPERTY
@given(net=st.sampled_from(NETS), data=st.data())
def test_removing_pools_leaves_every_conv_weight_as_it_was(net: str, data: st.DataObject) -> None:
    """A conv's weights do not depend on the size of its input, only a linear layer's do."""
    spec = builtin_registry().get(net)
    removed = data.draw(st.lists(st.sampled_from(pool_names(spec)), unique=True))
    try:
        result = run(net, Edits(remove_pools=removed))
    except SpecInvalid:
        return  # a size the rest of the net cannot take (a pool with padding on a tiny map)
    names = [row.name for row in result.table.layers]
    assert not set(removed) & set(names)
    assert len(names) == len(spec.layers) - len(removed)
    before = {row.name: row.weights for row in builtin_table(net).layers if row.kind == "conv"}
    after = {row.name: row.weights for row in result.table.layers if row.kind == "conv"}
    assert after == before
    # the first FC layer takes what flatten gives: the last map's W * H * D
    flat = next(row for row in result.table.layers if row.kind == "flatten")
    fc1 = next(row for row in result.table.layers if row.kind == "linear")
    layer = next(layer for layer in result.spec.layers if isinstance(layer, Linear))
    assert fc1.weights == flat.output.channels * layer.out_features


@PROPERTY
@given(net=st.sampled_from(NETS), kernel=st.integers(1, 15), stride=st.integers(1, 6))
def test_conv1_edits_set_conv1_alone(net: str, kernel: int, stride: int) -> None:
    try:
        result = run(net, Edits(conv1_kernel=kernel, conv1_stride=stride))
    except SpecInvalid:
        return
    spec = builtin_registry().get(net)
    first = next(layer for layer in spec.layers if isinstance(layer, Conv))
    conv1 = next(row for row in result.table.layers if row.kind == "conv")
    assert conv1.weights == kernel * kernel * spec.input.channels * first.out_channels
    side = (spec.input.width + 2 * first.padding - kernel) // stride + 1
    assert conv1.output.width == side
    before = [r.weights for r in builtin_table(net).layers if r.kind == "conv"][1:]
    after = [r.weights for r in result.table.layers if r.kind == "conv"][1:]
    assert after == before


@PROPERTY
@given(net=st.sampled_from(NETS), side=st.integers(32, 400))
def test_the_input_side_changes_the_input_and_no_conv_weight(net: str, side: int) -> None:
    try:
        result = run(net, Edits(input_side=side))
    except SpecInvalid:
        return
    assert (result.table.input.width, result.table.input.height) == (side, side)
    before = [r.weights for r in builtin_table(net).layers if r.kind == "conv"]
    assert [r.weights for r in result.table.layers if r.kind == "conv"] == before


@pytest.mark.parametrize("net", NETS)
def test_gap_feeds_the_second_fc_layer_one_average_per_channel(net: str) -> None:
    spec = builtin_registry().get(net)
    result = run(net, Edits(gap=True))
    rows = result.table.layers
    flat = next(i for i, row in enumerate(rows) if row.kind == "flatten")
    last_conv = [row for row in rows[:flat] if row.kind == "conv"][-1]
    assert rows[flat - 1].kind == "adaptiveavgpool"
    assert rows[flat].output.channels == last_conv.output.channels
    linears = [layer for layer in spec.layers if isinstance(layer, Linear)]
    fcs = [row for row in rows if row.kind == "linear"]
    assert len(fcs) == len(linears) - 1
    assert fcs[0].weights == last_conv.output.channels * linears[1].out_features


def test_bad_edits_name_the_field() -> None:
    spec = builtin_registry().get("alexnet-lecture")
    with pytest.raises(SpecInvalid) as caught:
        apply_edits(spec, Edits(remove_pools=["conv1"]))
    assert caught.value.issues[0].field == "remove_pools"
    assert "'conv1' is not a pooling layer (pools: pool1, pool2, pool3)" in str(caught.value)
    with pytest.raises(SpecInvalid) as caught:
        parse_edits({"conv1_kernel": 0, "colour": "red"})
    assert {issue.field for issue in caught.value.issues} == {"conv1_kernel", "colour"}
    with pytest.raises(SpecInvalid, match="only FC layer"):
        apply_edits(validate_spec(TINY), Edits(gap=True))


def test_the_edited_spec_is_bounded_as_a_users_spec_is() -> None:
    with pytest.raises(SpecInvalid, match="over the limit of 31"):
        run("alexnet-lecture", Edits(conv1_kernel=40))


TINY: dict[str, Any] = {
    "name": "tiny",
    "input": {"height": 32, "width": 32, "channels": 3},
    "layers": [
        {"kind": "conv", "out_channels": 8, "kernel": 3, "padding": 1},
        {"kind": "maxpool", "kernel": 2},
        {"kind": "flatten"},
        {"kind": "linear", "out_features": 10},
    ],
}
SPEC_LAYERS = st.lists(
    st.sampled_from(
        [
            {"kind": "conv", "out_channels": 4, "kernel": 3, "padding": 1},
            {"kind": "conv", "out_channels": 6, "kernel": 5, "stride": 2},
            {"kind": "relu"},
            {"kind": "maxpool", "kernel": 2},
            {"kind": "avgpool", "kernel": 3, "stride": 2},
        ]
    ),
    min_size=1,
    max_size=8,
)


@PROPERTY
@given(layers=SPEC_LAYERS, side=st.integers(8, 96), data=st.data())
def test_random_specs_without_their_pools_keep_their_conv_weights(
    layers: list[dict[str, Any]], side: int, data: st.DataObject
) -> None:
    raw = {
        "name": "random",
        "input": {"height": side, "width": side, "channels": 3},
        "layers": [*layers, {"kind": "flatten"}, {"kind": "linear", "out_features": 10}],
    }
    try:
        original = analyze(raw)
    except SpecInvalid:
        return
    spec = validate_spec(raw)
    pools = pool_names(spec)
    removed = data.draw(st.lists(st.sampled_from(pools), unique=True)) if pools else []
    try:
        result = what_if(spec, original, Edits(remove_pools=removed))
    except SpecInvalid:
        return
    convs = [row.weights for row in original.layers if row.kind == "conv"]
    assert [row.weights for row in result.table.layers if row.kind == "conv"] == convs
    # each removed pool is a stage only the original has (two alike may swap places)
    statuses = [stage.status for stage in result.comparison.stages]
    assert statuses.count("only_a") == len(removed)
    assert "only_b" not in statuses
    # the edited net's params are its rows' sums, worked out here
    flat = next(row for row in result.table.layers if row.kind == "flatten")
    assert result.table.layers[-1].weights == flat.output.channels * 10
    for a, b in itertools.pairwise(result.table.layers):
        assert b.input == a.output
