"""Every formula is true as written: each side of every = evaluates exactly (tests/core/
exact_formulas.py, Fractions) to the layer's own value, in the table JSON, the CSV and the pages,
for every built-in net and for random specs. And the receptive field never shrinks."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.across import across_figures
from app.core.calculator import analyze, builtin_table
from app.core.errors import SpecInvalid
from app.core.formatting import to_csv
from app.core.table import LayerRow, Table
from app.core.timeline import timeline
from app.specs import builtin_registry
from tests.core.exact_formulas import FormulaError, evaluate, value_of

IDS = builtin_registry().ids()


def check_row(row: LayerRow) -> None:
    """The row's formulas evaluate to its output size, its params and its MACs."""
    out = row.output
    if row.formula.output is not None:
        parts = evaluate(row.formula.output)
        if row.kind == "flatten":
            assert parts == {"": Fraction(out.channels)}, row.name
        elif set(parts) == {"H", "W"}:
            assert (parts["H"], parts["W"]) == (out.height, out.width), row.name
        else:
            assert parts[""] == out.height == out.width, row.name
    if row.formula.params is not None:
        assert value_of(row.formula.params) == row.params, row.name
    if row.formula.macs is not None:
        assert value_of(row.formula.macs) == row.macs, row.name
    if row.kind in {"conv", "maxpool", "avgpool", "flatten"}:
        assert row.formula.output is not None, f"{row.name}: a shaping layer shows its arithmetic"
    if row.params:
        assert row.formula.params is not None, f"{row.name} holds params: say how many"
    if row.macs:
        assert row.formula.macs is not None, f"{row.name} costs MACs: say how many"


def check_table(table: Table) -> None:
    for row in table.layers:
        check_row(row)
        for verdict in row.lecture:
            if verdict.computation:
                evaluate(verdict.computation)
    for verdict in table.lecture:
        if verdict.computation:
            assert value_of(verdict.computation) == getattr(
                table.totals, verdict.quantity.replace("total_", "")
            )
    for item in table.lecture_unstated:
        if item.computation:
            evaluate(item.computation)


def check_receptive_field(table: Table) -> None:
    fields = [table.layers[0].receptive_field, *(row.receptive_field for row in table.layers)]
    assert all(a <= b for a, b in itertools.pairwise(fields)), fields


@pytest.mark.parametrize("net_id", IDS)
def test_every_formula_of_every_net_is_true_as_written(net_id: str) -> None:
    check_table(builtin_table(net_id))


@pytest.mark.parametrize("net_id", IDS)
def test_the_table_json_and_csv_carry_the_same_true_formulas(net_id: str) -> None:
    table = builtin_table(net_id)
    rows = json.loads(table.model_dump_json())["layers"]
    csv_rows = list(csv.DictReader(io.StringIO(to_csv(table))))[:-1]  # the last is TOTAL
    for row, cells in zip(table.layers, csv_rows, strict=True):
        check_row(LayerRow.model_validate(rows[row.index]))
        formulas = (cells["output_formula"], cells["params_formula"], cells["macs_formula"])
        mine = (row.formula.output, row.formula.params, row.formula.macs)
        assert formulas == tuple(text or "" for text in mine)


def test_the_lecture_computations_beyond_the_tables_are_true() -> None:
    gaps = [
        figure.verdict for figure in timeline().figures if figure.verdict.quantity.endswith("gap")
    ]
    assert [gap.ref for gap in gaps] == [25, 30]
    for gap in gaps:
        assert gap.computation is not None
        assert value_of(gap.computation) == Fraction(gap.exact.removesuffix(" points"))
    for item in across_figures():
        assert item.verdict.computation is not None
        evaluate(item.verdict.computation)


@pytest.mark.parametrize("net_id", IDS)
def test_the_receptive_field_never_shrinks(net_id: str) -> None:
    check_receptive_field(builtin_table(net_id))


def test_vgg19s_receptive_field_after_flatten_spans_its_last_map() -> None:
    rows = {row.name: row for row in builtin_table("vgg19").layers}
    pool5, flatten = rows["avgpool"], rows["flatten"]
    assert (pool5.receptive_field, pool5.jump) == (268, 32)
    assert flatten.receptive_field == 268 + (7 - 1) * 32
    assert rows["fc8"].receptive_field == flatten.receptive_field


# The formulas the issue found false, and the kinds of text the grammar must refuse.
FALSE_AS_WRITTEN = [
    "(56 - 3 + 2*0) / 2 + 1 = 27",
    "(224 - 11 + 2*2) / 4 + 1 = 55",
    "(224 - 7 + 2*1) / 2 + 1 = 110",
    "11*11*3*96 = 34,848 weights + 96 biases = 34,944 params",
    "⌊(227 - 11 + 2*0) / 4⌋ + 1 = 55",  # the division is exact: no floor to write
    "1,024 -> 4,096",
    "same volume as the input",
    "55*55*96 outputs x 11*11*3 = 105,415,200 MACs",
    "6*6*256 = 9,216 (flattened)",
    "2 + 2 = 4 = 5",
]


@pytest.mark.parametrize("text", FALSE_AS_WRITTEN)
def test_the_evaluator_refuses_what_is_false_or_no_formula(text: str) -> None:
    with pytest.raises(FormulaError):
        evaluate(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("⌊(56 - 3 + 2*0) / 2⌋ + 1 = 27", 27),
        ("⌈(110 - 3 + 2*0) / 2⌉ + 1 = 55", 55),
        ("11*11*3*96 weights + 96 biases = 34,848 + 96 = 34,944 params", 34_944),
        ("(7*7*512) / (2*2*256) = 24.5", Fraction(49, 2)),
        ("5 conv + 3 linear = 8", 8),
        ("-3 + 5 = 2", 2),
    ],
)
def test_the_evaluator_reads_true_formulas(text: str, value: Fraction) -> None:
    assert value_of(text) == value


def test_a_part_per_axis_when_the_axes_differ() -> None:
    table = analyze(
        {
            "name": "wide",
            "input": {"height": 30, "width": 41, "channels": 3},
            "layers": [{"kind": "conv", "out_channels": 4, "kernel": 3, "stride": 2}],
        }
    )
    formula = table.layers[0].formula.output
    assert formula == "⌊(30 - 3 + 2*0) / 2⌋ + 1 = 14; W: (41 - 3 + 2*0) / 2 + 1 = 20".replace(
        "⌊", "H: ⌊", 1
    )
    assert evaluate(formula or "") == {"H": 14, "W": 20}


def test_a_ceil_mode_window_starting_in_the_padding_is_dropped_as_written() -> None:
    table = analyze(
        {
            "name": "ceil",
            "input": {"height": 5, "width": 5, "channels": 1},
            "layers": [
                {"kind": "maxpool", "kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True}
            ],
        }
    )
    row = table.layers[0]
    assert row.formula.output == "(5 - 3 + 2*1) / 2 + 1 = 3"
    assert row.output.height == 3
    table = analyze(
        {
            "name": "ceil",
            "input": {"height": 6, "width": 6, "channels": 1},
            "layers": [
                {"kind": "maxpool", "kernel": 2, "stride": 2, "padding": 1, "ceil_mode": True}
            ],
        }
    )
    row = table.layers[0]
    assert row.formula.output == "(6 - 2 + 2*1) / 2 + 1 = 4"
    check_row(row)


# Random specs: every kind and setting the rules take, square and not, to be evaluated.

SPATIAL = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("conv"),
            "out_channels": st.sampled_from([2, 4, 6]),
            "kernel": st.integers(1, 7),
        },
        optional={
            "stride": st.integers(1, 5),
            "padding": st.integers(0, 3),
            "dilation": st.integers(1, 3),
            "groups": st.sampled_from([1, 2]),
            "bias": st.booleans(),
        },
    ),
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["maxpool", "avgpool"]), "kernel": st.integers(1, 5)},
        optional={
            "stride": st.integers(1, 4),
            "padding": st.integers(0, 2),
            "ceil_mode": st.booleans(),
        },
    ),
    st.fixed_dictionaries({"kind": st.just("adaptiveavgpool"), "output_size": st.integers(1, 6)}),
    st.fixed_dictionaries({"kind": st.sampled_from(["batchnorm", "relu", "dropout", "lrn"])}).map(
        lambda layer: {**layer, "size": 3} if layer["kind"] == "lrn" else layer
    ),
)
HEAD = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.just("linear"), "out_features": st.integers(1, 5000)},
        optional={"bias": st.booleans()},
    ),
    st.fixed_dictionaries({"kind": st.sampled_from(["relu", "dropout", "batchnorm", "softmax"])}),
)


@st.composite
def random_specs(draw: st.DrawFn) -> dict[str, Any]:
    layers: list[dict[str, Any]] = draw(st.lists(SPATIAL, min_size=1, max_size=7))
    if draw(st.booleans()):
        layers += [{"kind": "flatten"}, *draw(st.lists(HEAD, max_size=3))]
    side = st.integers(1, 300)
    channels = draw(st.sampled_from([2, 4]))
    return {
        "name": "random",
        "input": {"height": draw(side), "width": draw(side), "channels": channels},
        "layers": layers,
    }


PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(random_specs())
def test_every_formula_of_a_random_spec_is_true_and_its_field_never_shrinks(
    raw: dict[str, Any],
) -> None:
    try:
        table = analyze(raw)
    except SpecInvalid as error:
        for issue in error.issues:  # a refusal's own arithmetic is true as written too
            for found in re.findall(r"would be (.+ = -?\d+), less than 1", issue.message):
                evaluate(found)
        return
    check_table(table)
    check_receptive_field(table)
