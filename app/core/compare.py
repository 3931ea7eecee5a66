"""Two nets side by side: their tables cut into stages and aligned stage by stage.

A stage is one layer that shapes the net (a conv, a pool, the flatten, a fully connected layer)
together with the helpers that follow it (ReLU, LRN, batch norm, dropout, softmax). Stages of the
same category are aligned by a global alignment (Needleman-Wunsch) that first keeps as many
stages paired as possible and then, among those pairings, pairs the stages whose output volumes
are closest, so VGG's 13 convs meet AlexNet's 5 at the scales where they work alike.

Pure Python (stdlib + pydantic): the API and the pages only present what this returns.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

from app.core.csv_safe import csv_text
from app.core.formatting import volume
from app.core.table import Frozen, LayerRow, Table
from app.specs.models import AvgPool, Layer, MaxPool, Spec, Volume

Category = Literal["conv", "pool", "flatten", "fc"]
# changed: its own settings differ; affected: same settings, but a change upstream alters its
# volume or params; only_a / only_b: the other net has no stage here.
Status = Literal["same", "changed", "affected", "only_a", "only_b"]
Setting = int | bool | str | None

CATEGORY_OF: dict[str, Category] = {
    "conv": "conv",
    "maxpool": "pool",
    "avgpool": "pool",
    "adaptiveavgpool": "pool",
    "flatten": "flatten",
    "linear": "fc",
}
# The words the lecture uses for a layer's defining numbers.
SETTING_NAMES = {"out_channels": "filters", "out_features": "units"}
UNSHOWN_FIELDS = {"kind", "name", "notes", "lecture"}
TOTAL_QUANTITIES = (
    "params",
    "conv_params",
    "fc_params",
    "macs",
    "conv_macs",
    "fc_macs",
    "activations",
    "depth",
)
GAP = (1, 0.0)


class Stage(Frozen):
    category: Category
    label: str
    kind: str
    layers: list[str]
    helpers: list[str]
    first: int
    last: int
    settings: dict[str, Setting]
    input: Volume
    output: Volume
    params: int
    macs: int
    receptive_field: int


class Change(Frozen):
    field: str
    a: Setting
    b: Setting


class AlignedStage(Frozen):
    position: int
    category: Category
    status: Status
    a: Stage | None
    b: Stage | None
    changes: list[Change]
    output_changed: bool
    params_delta: int
    macs_delta: int


class TotalDelta(Frozen):
    quantity: str
    a: int
    b: int
    difference: int
    ratio: float | None


class NetRef(Frozen):
    id: str | None
    name: str
    input: Volume


class Comparison(Frozen):
    a: NetRef
    b: NetRef
    stages: list[AlignedStage]
    totals: list[TotalDelta]


def layer_settings(layer: Layer) -> dict[str, Setting]:
    raw = layer.model_dump(exclude=UNSHOWN_FIELDS)
    if isinstance(layer, MaxPool | AvgPool):
        raw["stride"] = layer.stride or layer.kernel  # torch's default stride is the kernel
    return {SETTING_NAMES.get(key, key): value for key, value in raw.items()}


def _stage(layers: Sequence[Layer], rows: Sequence[LayerRow]) -> Stage:
    main = next(i for i, layer in enumerate(layers) if layer.kind in CATEGORY_OF)
    return Stage(
        category=CATEGORY_OF[layers[main].kind],
        label=rows[main].name,
        kind=layers[main].kind,
        layers=[row.name for row in rows],
        helpers=[layer.kind for i, layer in enumerate(layers) if i != main],
        first=rows[0].index,
        last=rows[-1].index,
        settings=layer_settings(layers[main]),
        input=rows[0].input,
        output=rows[-1].output,
        params=sum(row.params for row in rows),
        macs=sum(row.macs for row in rows),
        receptive_field=rows[-1].receptive_field,
    )


def stages(spec: Spec, table: Table) -> list[Stage]:
    """The net cut into stages; helpers before the first shaping layer join the first stage."""
    starts = [i for i, layer in enumerate(spec.layers) if layer.kind in CATEGORY_OF]
    if not starts:
        return []
    bounds = [0, *starts[1:], len(spec.layers)]
    return [
        _stage(spec.layers[begin:end], table.layers[begin:end])
        for begin, end in itertools.pairwise(bounds)
    ]


def _log_gap(a: int, b: int) -> float:
    return abs(math.log2(a) - math.log2(b))


def _dissimilarity(a: Stage, b: Stage) -> float:
    side = _log_gap(a.output.height, b.output.height) + _log_gap(a.output.width, b.output.width)
    return side + _log_gap(a.output.channels, b.output.channels)


def _add(cost: tuple[int, float], step: tuple[int, float]) -> tuple[int, float]:
    return cost[0] + step[0], cost[1] + step[1]


def _alignment_costs(a: list[Stage], b: list[Stage]) -> list[list[tuple[int, float]]]:
    """costs[i][j]: (unpaired stages, dissimilarity) of the best alignment of a[i:] with b[j:]."""
    unreachable = (len(a) + len(b) + 1, math.inf)
    costs = [[unreachable] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a), -1, -1):
        for j in range(len(b), -1, -1):
            if i == len(a) or j == len(b):
                costs[i][j] = (len(a) - i + len(b) - j, 0.0)
                continue
            options = [_add(costs[i + 1][j], GAP), _add(costs[i][j + 1], GAP)]
            if a[i].category == b[j].category:
                options.append(_add(costs[i + 1][j + 1], (0, _dissimilarity(a[i], b[j]))))
            costs[i][j] = min(options)
    return costs


def align(a: list[Stage], b: list[Stage]) -> list[tuple[Stage | None, Stage | None]]:
    """The pairs of one best alignment, in order; None marks a stage the other net lacks."""
    costs = _alignment_costs(a, b)
    pairs: list[tuple[Stage | None, Stage | None]] = []
    i = j = 0
    while i < len(a) or j < len(b):
        here = costs[i][j]
        paired = i < len(a) and j < len(b) and a[i].category == b[j].category
        if paired and here == _add(costs[i + 1][j + 1], (0, _dissimilarity(a[i], b[j]))):
            pairs.append((a[i], b[j]))
            i, j = i + 1, j + 1
        elif i < len(a) and (j == len(b) or here == _add(costs[i + 1][j], GAP)):
            pairs.append((a[i], None))
            i += 1
        else:
            pairs.append((None, b[j]))
            j += 1
    return pairs


def _helper_text(stage: Stage) -> str:
    return " + ".join(stage.helpers) or "none"


def _changes(a: Stage, b: Stage) -> list[Change]:
    changes = []
    if a.kind != b.kind:
        changes.append(Change(field="kind", a=a.kind, b=b.kind))
    for field in dict.fromkeys([*a.settings, *b.settings]):
        left, right = a.settings.get(field), b.settings.get(field)
        if left != right:
            changes.append(Change(field=field, a=left, b=right))
    if a.helpers != b.helpers:
        changes.append(Change(field="with", a=_helper_text(a), b=_helper_text(b)))
    return changes


def _aligned(position: int, a: Stage | None, b: Stage | None) -> AlignedStage:
    changes = _changes(a, b) if a and b else []
    output_changed = bool(a and b and a.output != b.output)
    if a is None or b is None:
        status: Status = "only_b" if a is None else "only_a"
    else:
        affected = output_changed or a.params != b.params or a.macs != b.macs
        status = "changed" if changes else "affected" if affected else "same"
    present = a or b
    assert present is not None  # align() never pairs two gaps
    return AlignedStage(
        position=position,
        category=present.category,
        status=status,
        a=a,
        b=b,
        changes=changes,
        output_changed=output_changed,
        params_delta=(b.params if b else 0) - (a.params if a else 0),
        macs_delta=(b.macs if b else 0) - (a.macs if a else 0),
    )


def _total(quantity: str, a: Table, b: Table) -> TotalDelta:
    left: int = getattr(a.totals, quantity)
    right: int = getattr(b.totals, quantity)
    ratio = round(right / left, 6) if left else None
    return TotalDelta(quantity=quantity, a=left, b=right, difference=right - left, ratio=ratio)


def _ref(table: Table) -> NetRef:
    return NetRef(id=table.id, name=table.name, input=table.input)


def compare(spec_a: Spec, table_a: Table, spec_b: Spec, table_b: Table) -> Comparison:
    """Net B against net A: aligned stages with what changed, then the totals' differences."""
    pairs = align(stages(spec_a, table_a), stages(spec_b, table_b))
    return Comparison(
        a=_ref(table_a),
        b=_ref(table_b),
        stages=[_aligned(position, a, b) for position, (a, b) in enumerate(pairs)],
        totals=[_total(quantity, table_a, table_b) for quantity in TOTAL_QUANTITIES],
    )


CSV_COLUMNS = [
    "position",
    "category",
    "status",
    "a_stage",
    "a_output",
    "a_params",
    "b_stage",
    "b_output",
    "b_params",
    "params_delta",
    "macs_delta",
    "changes",
]


def _side_cells(stage: Stage | None) -> list[object]:
    if stage is None:
        return ["", "", ""]
    return [stage.label, volume(stage.output), stage.params]


def _change_text(change: Change) -> str:
    return f"{change.field}: {change.a} -> {change.b}"


def to_csv(comparison: Comparison) -> str:
    """One row per aligned stage; volumes in the lecture's W x H x D order."""
    rows = (
        [
            row.position,
            row.category,
            row.status,
            *_side_cells(row.a),
            *_side_cells(row.b),
            row.params_delta,
            row.macs_delta,
            "; ".join(_change_text(change) for change in row.changes),
        ]
        for row in comparison.stages
    )
    return csv_text(CSV_COLUMNS, rows)
