"""The compare alignment: stages, their pairing, what changed, and the totals' differences."""

from __future__ import annotations

import csv
import io
import itertools
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from app.core.calculator import analyze, builtin_table, compute_table, validate_spec
from app.core.compare import (
    CSV_COLUMNS,
    TOTAL_QUANTITIES,
    Comparison,
    align,
    compare,
    stages,
    to_csv,
)
from app.specs import Spec, builtin_registry

IDS = builtin_registry().ids()
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "tables"


@cache
def golden(spec_id: str) -> dict[str, Any]:
    """The net's reviewed table (tests/golden/tables), not the calculator's answer of today."""
    table: dict[str, Any] = json.loads((GOLDEN / f"{spec_id}.json").read_text(encoding="utf-8"))
    return table


def _builtin(a: str, b: str) -> Comparison:
    registry = builtin_registry()
    return compare(registry.get(a), builtin_table(a), registry.get(b), builtin_table(b))


def _spec(layers: list[dict[str, Any]], side: int = 32) -> Spec:
    raw = {"name": "net", "input": {"height": side, "width": side, "channels": 3}, "layers": layers}
    return validate_spec(raw)


def _custom(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> Comparison:
    spec_a, spec_b = _spec(a), _spec(b)
    return compare(spec_a, compute_table(spec_a), spec_b, compute_table(spec_b))


Layer = dict[str, Any]
CONV: Layer = {"kind": "conv", "out_channels": 8, "kernel": 3, "padding": 1}
POOL: Layer = {"kind": "maxpool", "kernel": 2, "stride": 2}
HEAD: list[Layer] = [{"kind": "flatten"}, {"kind": "linear", "out_features": 10}]


def test_a_stage_is_a_shaping_layer_with_the_helpers_after_it() -> None:
    spec = builtin_registry().get("alexnet-2012")
    found = stages(spec, builtin_table("alexnet-2012"))
    conv1 = found[0]
    assert (conv1.category, conv1.label, conv1.layers) == (
        "conv",
        "conv1",
        ["conv1", "relu1", "norm1"],
    )
    assert conv1.helpers == ["relu", "lrn"]
    assert [stage.category for stage in found].count("fc") == 3
    covered = [name for stage in found for name in stage.layers]
    assert covered == [row.name for row in builtin_table("alexnet-2012").layers]


def test_helpers_before_the_first_shaping_layer_join_the_first_stage() -> None:
    spec = _spec([{"kind": "relu"}, CONV, *HEAD])
    [first, *_] = stages(spec, compute_table(spec))
    assert (first.label, first.layers, first.first) == ("conv1", ["relu1", "conv1"], 0)


def test_a_stage_sums_its_layers_and_spans_their_volumes() -> None:
    spec = builtin_registry().get("vgg11-bn")
    table = builtin_table("vgg11-bn")
    for stage in stages(spec, table):
        rows = table.layers[stage.first : stage.last + 1]
        assert stage.params == sum(row.params for row in rows)
        assert stage.macs == sum(row.macs for row in rows)
        assert (stage.input, stage.output) == (rows[0].input, rows[-1].output)


def test_the_lectures_own_comparison_names_each_change() -> None:
    result = _builtin("alexnet-lecture", "zfnet-lecture")
    changed = {
        stage.a.label: [(c.field, c.a, c.b) for c in stage.changes]
        for stage in result.stages
        if stage.status == "changed" and stage.a
    }
    assert changed == {
        "conv1": [("kernel", 11, 7)],
        "conv3": [("filters", 384, 512)],
        "conv4": [("filters", 384, 1024)],
        "conv5": [("filters", 256, 512)],
    }
    fc6 = next(stage for stage in result.stages if stage.a and stage.a.label == "fc6")
    assert fc6.status == "affected"  # same 4096 units, a wider input after conv5
    assert fc6.changes == []
    assert fc6.params_delta > 0


def test_identical_nets_align_one_to_one_with_nothing_changed() -> None:
    result = _builtin("vgg16", "vgg16")
    assert {stage.status for stage in result.stages} == {"same"}
    assert all(stage.a == stage.b for stage in result.stages)
    assert all(total.difference == 0 and total.ratio == 1.0 for total in result.totals)


def test_an_extra_stage_is_a_gap_on_the_other_side() -> None:
    result = _custom([CONV, POOL, *HEAD], [CONV, CONV, POOL, *HEAD])
    assert [stage.status for stage in result.stages].count("only_b") == 1
    gap = next(stage for stage in result.stages if stage.status == "only_b")
    assert gap.a is None
    assert gap.b is not None
    assert gap.params_delta == gap.b.params


def test_stages_of_different_categories_never_pair() -> None:
    result = _custom([CONV, *HEAD], [POOL, *HEAD])
    first_two = result.stages[:2]
    assert {stage.status for stage in first_two} == {"only_a", "only_b"}


def test_a_changed_pool_kind_and_its_settings_are_named() -> None:
    pool_a = {"kind": "maxpool", "kernel": 2}
    pool_b = {"kind": "avgpool", "kernel": 2, "stride": 2}
    result = _custom([CONV, pool_a, *HEAD], [CONV, pool_b, *HEAD])
    pool = result.stages[1]
    # torch's default stride is the kernel, so stride 2 given or implied is the same stride
    assert [(c.field, c.a, c.b) for c in pool.changes] == [("kind", "maxpool", "avgpool")]


def test_a_changed_helper_is_named() -> None:
    result = _custom([CONV, *HEAD], [{**CONV}, {"kind": "batchnorm"}, {"kind": "relu"}, *HEAD])
    conv = result.stages[0]
    assert [(c.field, c.a, c.b) for c in conv.changes] == [("with", "none", "batchnorm + relu")]


@pytest.mark.parametrize(("a", "b"), list(itertools.product(IDS, repeat=2)))
def test_every_pair_of_nets_aligns_completely_and_adds_up(a: str, b: str) -> None:
    result = _builtin(a, b)
    for side, spec_id in (("a", a), ("b", b)):
        mine = [getattr(stage, side) for stage in result.stages if getattr(stage, side)]
        # Every layer in exactly one stage, in order; the stages' params add up to the net's.
        covered = [name for stage in mine for name in stage.layers]
        assert covered == [row["name"] for row in golden(spec_id)["layers"]]
        assert sum(stage.params for stage in mine) == golden(spec_id)["totals"]["params"]
    for stage in result.stages:
        if stage.a and stage.b:
            assert stage.a.category == stage.b.category == stage.category
    for quantity in ("params", "macs"):
        difference = golden(b)["totals"][quantity] - golden(a)["totals"][quantity]
        assert sum(getattr(stage, f"{quantity}_delta") for stage in result.stages) == difference


def test_the_totals_list_every_quantity_with_difference_and_ratio() -> None:
    result = _builtin("alexnet-lecture", "vgg16")
    a, b = golden("alexnet-lecture")["totals"], golden("vgg16")["totals"]
    assert [total.quantity for total in result.totals] == list(TOTAL_QUANTITIES)
    for total in result.totals:
        assert (total.a, total.b) == (a[total.quantity], b[total.quantity])
        assert total.difference == total.b - total.a
        assert total.ratio == pytest.approx(total.b / total.a)


def test_a_ratio_over_zero_is_none() -> None:
    no_fc = [CONV, {"kind": "flatten"}]
    result = _custom(no_fc, [CONV, *HEAD])
    fc_params = next(total for total in result.totals if total.quantity == "fc_params")
    assert (fc_params.a, fc_params.ratio) == (0, None)


def test_align_prefers_the_closest_volumes_among_equally_long_alignments() -> None:
    spec_a = _spec([CONV, POOL, POOL, *HEAD], side=64)
    spec_b = _spec([CONV, POOL, *HEAD], side=64)
    pairs = align(stages(spec_a, compute_table(spec_a)), stages(spec_b, compute_table(spec_b)))
    paired_pool = next(a for a, b in pairs if a and b and a.category == "pool")
    assert paired_pool.label == "maxpool1"  # 32x32 meets 32x32, not 16x16


def test_the_csv_has_one_row_per_aligned_stage() -> None:
    result = _builtin("alexnet-lecture", "zfnet-lecture")
    rows = list(csv.reader(io.StringIO(to_csv(result))))
    assert rows[0] == CSV_COLUMNS
    assert len(rows) == 1 + len(result.stages)
    conv1 = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert conv1["changes"] == "kernel: 11 -> 7"
    assert int(conv1["params_delta"]) == result.stages[0].params_delta


def test_compare_takes_user_specs_too() -> None:
    raw = {
        "name": "mine",
        "input": {"height": 8, "width": 8, "channels": 1},
        "layers": [{"kind": "conv", "out_channels": 4, "kernel": 3}, *HEAD],
    }
    table = analyze(raw)
    spec = validate_spec(raw)
    result = compare(spec, table, spec, table)
    assert result.a.name == result.b.name == "mine"
    assert result.a.id is None
