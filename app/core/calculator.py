"""The calculator: spec -> table. Pure Python (stdlib + pydantic), no torch, fastapi or onnxruntime.

It walks the layers once, carrying the volume, whether the input has been flattened, and the
receptive field and jump of one unit, and applies each kind's rule from layers.py. Then it sets
each lecture figure beside the exact value (lecture.py).

The receptive field never shrinks: each layer widens it by (kernel - 1) * jump, and flatten is a
window over the whole last map, so a unit after it sees RF + (H - 1) * jump input pixels, the
span of every unit of that map (along the height axis, as every receptive field here). It counts
the zero padding too, so it may exceed the image (VGG-19's pool5 units already span 268 of 224).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from pydantic import ValidationError

from app.core import layers as rules
from app.core.errors import LayerError, SpecInvalid, SpecIssue, issues_from_validation
from app.core.lecture import UnknownPlaceholder, basis, filler, verdict, volume_list, volume_text
from app.core.limits import SpecLimits, check_spec_limits, check_table_limits
from app.core.table import Basis, Formula, LayerRow, Table, Totals, Unstated, Verdict, Warning
from app.specs.models import (
    PARAMETRIC_KINDS,
    Conv,
    Layer,
    LectureFigure,
    Spec,
    layer_names,
)
from app.specs.registry import builtin_registry

BYTES_PER_FP32 = 4
Fill = Callable[[str], str]


def _duplicate_name_issues(names: list[str]) -> list[SpecIssue]:
    seen: dict[str, int] = {}
    issues = []
    for index, name in enumerate(names):
        if name in seen:
            message = f"the name is already used by layer {seen[name]}"
            issues.append(SpecIssue(index=index, name=name, field="name", message=message))
        seen.setdefault(name, index)
    return issues


# The shaping layers whose output volume a lecture net's walk-through states or skips.
VOLUME_KINDS = frozenset({"conv", "maxpool", "avgpool"})
OUTPUT_QUANTITIES = frozenset({"output", "output_width"})


def _next_spatial(state: rules.State, result: rules.Result) -> rules.Spatial:
    if state.flattened:
        return state.spatial  # a linear unit sees what the flattened vector saw
    if result.flattens:
        field = state.spatial.receptive_field + (state.volume.height - 1) * state.spatial.jump
        return rules.Spatial(receptive_field=field, jump=0)
    if result.window is None:
        return state.spatial
    kernel, stride = result.window
    field = state.spatial.receptive_field + (kernel - 1) * state.spatial.jump
    return rules.Spatial(receptive_field=field, jump=state.spatial.jump * stride)


def _layer_figure_value(figure: LectureFigure, row: LayerRow, layer: Layer) -> int | list[int]:
    quantity = figure.quantity
    if quantity in {"input", "output"}:
        return volume_list(row.input if quantity == "input" else row.output)
    if quantity == "output_width":
        return row.output.width
    if quantity == "filters":
        return layer.out_channels if isinstance(layer, Conv) else row.output.channels
    if quantity in {"kernel", "stride"}:
        setting: int = getattr(layer, quantity, None) or getattr(layer, "kernel")  # noqa: B009
        return setting
    value: int = getattr(row, quantity)
    return value


def _layer_computation(quantity: str, row: LayerRow) -> str | None:
    """The row's arithmetic behind a figure about it, when there is some."""
    if quantity in {"input", "output", "output_width"}:
        return row.formula.output
    if quantity == "activations":
        if row.kind == "flatten":
            return row.formula.output
        out = row.output
        return f"{out.height}*{out.width}*{out.channels} = {row.activations:,}"
    if quantity in {"weights", "params"}:
        return row.formula.params
    return None


def _row(
    index: int,
    name: str,
    layer: Layer,
    state: rules.State,
    result: rules.Result,
    spatial: rules.Spatial,
) -> LayerRow:
    activations = result.output.height * result.output.width * result.output.channels
    notes = [*layer.notes, *result.notes, *result.unused]
    return LayerRow(
        index=index,
        name=name,
        kind=layer.kind,
        input=state.volume,
        output=result.output,
        weights=result.weights,
        biases=result.biases,
        params=result.weights + result.biases,
        macs=result.macs,
        flops=2 * result.macs,
        activations=activations,
        activation_bytes=BYTES_PER_FP32 * activations,
        receptive_field=spatial.receptive_field,
        jump=spatial.jump or None,  # after flatten a unit sees the whole last map: no stride
        formula=Formula(
            output=result.output_formula, params=result.params_formula, macs=result.macs_formula
        ),
        notes=notes,
        lecture=[],
    )


def _walk(spec: Spec, names: list[str]) -> list[LayerRow]:
    state = rules.State(spec.input, False, rules.Spatial(receptive_field=1, jump=1))
    rows = []
    for index, (layer, name) in enumerate(zip(spec.layers, names, strict=True)):
        try:
            result = rules.apply(layer, state)
        except LayerError as error:
            issue = SpecIssue(index=index, name=name, field=error.field, message=error.message)
            raise SpecInvalid([issue]) from None
        spatial = _next_spatial(state, result)
        rows.append(_row(index, name, layer, state, result, spatial))
        state = rules.State(result.output, state.flattened or result.flattens, spatial)
    return rows


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _totals(spec: Spec, rows: list[LayerRow]) -> Totals:
    flat_at = next((row.index for row in rows if row.kind == "flatten"), len(rows))
    conv_side, fc_side = rows[:flat_at], rows[flat_at:]
    params = sum(row.params for row in rows)
    macs = sum(row.macs for row in rows)
    conv_params = sum(row.params for row in conv_side)
    fc_params = sum(row.params for row in fc_side)
    activations = sum(row.activations for row in rows)
    return Totals(
        params=params,
        weights=sum(row.weights for row in rows),
        biases=sum(row.biases for row in rows),
        macs=macs,
        flops=2 * macs,
        activations=activations,
        activation_bytes=BYTES_PER_FP32 * activations,
        conv_params=conv_params,
        fc_params=fc_params,
        conv_share=_share(conv_params, params),
        fc_share=_share(fc_params, params),
        conv_macs=sum(row.macs for row in conv_side),
        fc_macs=sum(row.macs for row in fc_side),
        depth=sum(1 for layer in spec.layers if layer.kind in PARAMETRIC_KINDS),
    )


def _figure_verdict(
    figure: LectureFigure,
    exact: int | list[int],
    how: Basis,
    computation: str | None,
    fill: Fill,
    field: str,
    row: LayerRow | None = None,
) -> Verdict:
    """One figure's verdict; arithmetic it cannot do (a float overflow, an integer past Python's
    digit limit, a decimal error) is a SpecInvalid naming the figure, never a traceback. The
    limits (limits.py) keep a user's figures far from these; this holds without them too."""
    try:
        return verdict(figure, exact, how, computation, fill)
    except UnknownPlaceholder:
        raise
    except (ArithmeticError, ValueError) as error:
        stated = "factors" if figure.factors is not None else "value"
        message = f"this figure's {stated} is too large to compute: {error}"
        issue = SpecIssue(
            index=None if row is None else row.index,
            name=None if row is None else row.name,
            field=f"{field}.{stated}",
            message=message,
        )
        raise SpecInvalid([issue]) from None


def _layer_verdicts(spec: Spec, rows: list[LayerRow], fill: Fill) -> list[LayerRow]:
    from_lecture = spec.simplifies is not None
    return [
        row.model_copy(
            update={
                "lecture": [
                    _figure_verdict(
                        figure,
                        _layer_figure_value(figure, row, layer),
                        basis(figure.quantity, from_lecture),
                        _layer_computation(figure.quantity, row),
                        fill,
                        f"lecture.{position}",
                        row,
                    )
                    for position, figure in enumerate(layer.lecture)
                ]
            }
        )
        if layer.lecture
        else row
        for layer, row in zip(spec.layers, rows, strict=True)
    ]


def _sum_text(terms: list[int], total: int) -> str | None:
    """``a + b + ... = total`` over the layers that hold something; None for fewer than two."""
    if len(terms) < 2:
        return None
    return " + ".join(f"{term:,}" for term in terms) + f" = {total:,}"


def _spec_computation(quantity: str, rows: list[LayerRow], totals: Totals) -> str | None:
    """Where a whole-net figure comes from: the layers it adds up."""
    flat_at = next((row.index for row in rows if row.kind == "flatten"), len(rows))
    sides = {
        "total_params": (rows, totals.params),
        "conv_params": (rows[:flat_at], totals.conv_params),
        "fc_params": (rows[flat_at:], totals.fc_params),
    }
    if quantity in sides:
        part, total = sides[quantity]
        return _sum_text([row.params for row in part if row.params], total)
    if quantity == "depth":
        kinds = [row.kind for row in rows if row.kind in PARAMETRIC_KINDS]
        return f"{kinds.count('conv')} conv + {kinds.count('linear')} linear = {totals.depth}"
    return None


def _unstated(spec: Spec, rows: list[LayerRow]) -> list[Unstated]:
    """A lecture net's conv and pool layers whose output the lecture's walk-through skips."""
    if spec.simplifies is None:
        return []
    return [
        Unstated(
            index=row.index,
            name=row.name,
            exact=volume_text(volume_list(row.output)),
            computation=row.formula.output,
        )
        for layer, row in zip(spec.layers, rows, strict=True)
        if row.kind in VOLUME_KINDS
        and not any(f.quantity in OUTPUT_QUANTITIES for f in layer.lecture)
    ]


def _spec_figure_value(figure: LectureFigure, spec: Spec, totals: Totals) -> int | list[int]:
    quantity = figure.quantity
    if quantity == "input":
        return volume_list(spec.input)
    if quantity == "conv_kernel":
        kernels = {layer.kernel for layer in spec.layers if isinstance(layer, Conv)}
        stated = figure.value if isinstance(figure.value, int) else -1
        return stated if kernels == {stated} else max(kernels, default=0)
    if quantity == "total_params":
        return totals.params
    value: int = getattr(totals, quantity)
    return value


def _warnings(rows: list[LayerRow]) -> list[Warning]:
    return [
        Warning(index=row.index, name=row.name, code="unused_pixels", message=note)
        for row in rows
        for note in row.notes
        if note.startswith("the stride leaves")
    ]


def _spec_verdicts(spec: Spec, rows: list[LayerRow], totals: Totals, fill: Fill) -> list[Verdict]:
    from_lecture = spec.simplifies is not None
    return [
        _figure_verdict(
            figure,
            _spec_figure_value(figure, spec, totals),
            basis(figure.quantity, from_lecture),
            _spec_computation(figure.quantity, rows, totals),
            fill,
            f"lecture.{position}",
        )
        for position, figure in enumerate(spec.lecture)
    ]


def compute_table(spec: Spec) -> Table:
    """The exact table of a validated spec; SpecInvalid names the first layer that cannot run,
    or a lecture figure whose reason quotes what the table does not have."""
    names = layer_names(spec)
    duplicates = _duplicate_name_issues(names)
    if duplicates:
        raise SpecInvalid(duplicates)
    rows = _walk(spec, names)
    totals = _totals(spec, rows)
    fill = filler(rows, totals)
    try:
        rows = _layer_verdicts(spec, rows, fill)
        figures = _spec_verdicts(spec, rows, totals, fill)
    except UnknownPlaceholder as error:
        issue = SpecIssue(index=None, name=None, field="lecture", message=str(error))
        raise SpecInvalid([issue]) from None
    return Table(
        id=spec.id,
        name=spec.name,
        input=spec.input,
        layers=rows,
        totals=totals,
        lecture=figures,
        lecture_unstated=_unstated(spec, rows),
        warnings=_warnings(rows),
    )


def validate_spec(raw: object) -> Spec:
    """A user's spec from parsed JSON; SpecInvalid lists every schema problem."""
    try:
        return Spec.model_validate(raw)
    except ValidationError as error:
        raise SpecInvalid(issues_from_validation(error, raw)) from None


def analyze(raw: object, limits: SpecLimits | None = None) -> Table:
    """Validate and compute in one step: the table, or SpecInvalid naming every problem found.

    With ``limits`` (the server's), field sizes are checked before the arithmetic and the
    derived totals after it, so nothing oversized is ever built.
    """
    spec = validate_spec(raw)
    if limits is not None:
        check_spec_limits(spec, limits)
    table = compute_table(spec)
    if limits is not None:
        check_table_limits(table, limits)
    return table


@cache
def builtin_table(spec_id: str) -> Table:
    """The table of a built-in net, computed once per process."""
    return compute_table(builtin_registry().get(spec_id))
