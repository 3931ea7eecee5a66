"""VGG's case for stacked 3x3 convs, stage by stage, from the spec.

Simonyan and Zisserman (section 2.3): a stack of n 3x3 convs (stride 1) sees what one
(2n+1) x (2n+1) conv sees, with fewer weights and n non-linearities instead of one: three 3x3
layers of C channels have 3 * (3^2 C^2) = 27 C^2 weights against 49 C^2 for one 7x7.

Each stage of a net (a run of convs between pools) is set against the one conv that replaces it,
and every count comes from the calculator run on the two small nets: the stack as the net has it
(its real input and output channels, at the stage's input size) and the single conv from the same
input to the same output. Beside it, the paper's own comparison at C channels in and out.
"""

from __future__ import annotations

from app.core.calculator import compute_table
from app.core.table import Frozen
from app.specs import models as m

STACK_KERNEL = 3
HELPER_KINDS = frozenset({"relu", "batchnorm"})
NONLINEAR_KINDS = frozenset({"relu"})


class Side(Frozen):
    """One way to build the stage: its convs, weights, MACs and receptive field."""

    layers: int
    kernel: int
    weights: int
    macs: int
    receptive_field: int
    nonlinearities: int
    weights_formula: str


class StackCase(Frozen):
    stage: int
    layers: list[str]
    convs: int
    input: m.Volume
    channels: int
    stack: Side  # the stage as the net builds it
    single: Side  # one (2n+1) x (2n+1) conv from the same input to the same output
    stack_at_c: Side  # the paper's comparison: C channels in and out
    single_at_c: Side
    weights_saved: int
    weights_ratio: float


def _run(convs: list[m.Conv], volume: m.Volume) -> tuple[int, int, int, list[str]]:
    """(weights, MACs, receptive field, each conv's weights formula) by the calculator."""
    layers: list[m.Layer] = []
    for conv in convs:
        layers += [conv, m.ReLU(kind="relu")]
    table = compute_table(m.Spec(name="stage", input=volume, layers=layers))
    formulas = [
        (row.formula.params or "").split(" weights")[0] for row in table.layers if row.weights
    ]
    last = table.layers[-1]
    return table.totals.weights, table.totals.macs, last.receptive_field, formulas


def _side(convs: list[m.Conv], volume: m.Volume, nonlinearities: int) -> Side:
    weights, macs, field, formulas = _run(convs, volume)
    return Side(
        layers=len(convs),
        kernel=convs[0].kernel,
        weights=weights,
        macs=macs,
        receptive_field=field,
        nonlinearities=nonlinearities,
        weights_formula=" + ".join(formulas) + f" = {weights:,}",
    )


def _conv(channels: int, kernel: int, padding: int) -> m.Conv:
    return m.Conv(kind="conv", out_channels=channels, kernel=kernel, padding=padding, bias=False)


def _stages(spec: m.Spec) -> list[list[int]]:
    """Runs of layer indices: convs (and their ReLU / batch norm) with no pool between."""
    runs: list[list[int]] = []
    current: list[int] = []
    for index, layer in enumerate(spec.layers):
        if layer.kind == "conv" or (current and layer.kind in HELPER_KINDS):
            current.append(index)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def _is_stack(convs: list[m.Conv]) -> bool:
    """Two or more plain 3x3 stride-1 convs with one padding: one larger conv (padding their
    sum) gives the same output size."""
    return (
        len(convs) >= 2
        and len({c.padding for c in convs}) == 1
        and all(
            c.kernel == STACK_KERNEL and c.stride == 1 and c.dilation == 1 and c.groups == 1
            for c in convs
        )
    )


def stack_cases(spec: m.Spec) -> list[StackCase]:
    """Each stage of two or more 3x3 stride-1 convs, against one (2n+1) x (2n+1) conv with the
    stack's padding added up (so the output size is the same)."""
    table = compute_table(spec)
    cases = []
    stage = 0
    for run in _stages(spec):
        stage += 1
        convs = [c for c in (spec.layers[i] for i in run) if isinstance(c, m.Conv)]
        if not _is_stack(convs):
            continue
        count = len(convs)
        pad = convs[0].padding
        volume = table.layers[run[0]].input
        channels = convs[-1].out_channels
        relus = sum(1 for i in run if spec.layers[i].kind in NONLINEAR_KINDS)
        big = _conv(channels, 2 * count + 1, count * pad)
        stack = _side([_conv(c.out_channels, STACK_KERNEL, pad) for c in convs], volume, relus)
        single = _side([big], volume, 1)
        at_c = volume.model_copy(update={"channels": channels})
        stack_at_c = _side([_conv(channels, STACK_KERNEL, pad)] * count, at_c, count)
        single_at_c = _side([big], at_c, 1)
        cases.append(
            StackCase(
                stage=stage,
                layers=[table.layers[i].name for i in run if spec.layers[i].kind == "conv"],
                convs=count,
                input=volume,
                channels=channels,
                stack=stack,
                single=single,
                stack_at_c=stack_at_c,
                single_at_c=single_at_c,
                weights_saved=single.weights - stack.weights,
                weights_ratio=round(stack.weights / single.weights, 6),
            )
        )
    return cases
