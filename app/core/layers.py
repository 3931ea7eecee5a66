"""Per-kind arithmetic: output volume, weights, biases, MACs and the formulas, one rule per kind.

Each rule follows torch's own output-size rules exactly (floor division, ceil-mode pools, the
"padding at most half the kernel" check of pools), so a spec the rules accept is one torch runs.
MACs count multiply-accumulates of conv and linear layers only, as torchvision's published
"GFLOPS" do; FLOPs are twice the MACs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from app.core.errors import LayerError
from app.specs import models as m


@dataclass(frozen=True)
class Spatial:
    """Where a unit of the current map looks in the input image, along one axis."""

    receptive_field: int
    jump: int


@dataclass(frozen=True)
class State:
    volume: m.Volume
    flattened: bool
    spatial: Spatial


@dataclass
class Result:
    output: m.Volume
    output_formula: str | None  # None where the output is the input's volume or a set size
    weights: int = 0
    biases: int = 0
    macs: int = 0
    params_formula: str | None = None
    macs_formula: str | None = None
    window: tuple[int, int] | None = None  # (effective kernel, stride) for receptive fields
    notes: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    flattens: bool = False


def n(value: int) -> str:
    return f"{value:,}"


def _side_division(numerator: str, span: int, stride: int, rounding: str) -> str:
    """``numerator / stride`` as written: plain where it divides exactly, else in the floor
    (``⌊...⌋``) or ceiling (``⌈...⌉``) brackets torch's rounding applies, so it holds as written."""
    text = f"{numerator} / {stride}"
    if span % stride == 0:
        return text
    return f"⌊{text}⌋" if rounding == "floor" else f"⌈{text}⌉"


def _span_text(size: int, kernel: int, padding: int, dilation: int = 1) -> str:
    """The padded input less the window, as the lecture writes it: (W - F + 2P); a dilated
    window spans dilation*(F - 1) + 1 pixels."""
    window = f"{kernel}" if dilation == 1 else f"{dilation}*({kernel} - 1) - 1"
    return f"({size} - {window} + 2*{padding})"


@dataclass(frozen=True)
class Axis:
    """One axis of a conv or pool output: its size, its formula, the padded input pixels the
    stride leaves unused, and whether ceil mode dropped a last window starting in the padding."""

    size: int
    formula: str
    unused: int = 0
    dropped_window: bool = False


def _axis_size(size: int, kernel: int, stride: int, padding: int, dilation: int, axis: str) -> Axis:
    """Floor-mode output size along one axis, its formula text and the pixels the stride drops."""
    effective = dilation * (kernel - 1) + 1
    padded = size + 2 * padding
    if effective > padded:
        kernel_text = f"{kernel}" if dilation == 1 else f"{kernel} (dilated to {effective})"
        raise LayerError(
            "kernel",
            f"kernel {kernel_text} is larger than the padded input {axis} "
            f"{size} + 2*{padding} = {padded}",
        )
    span = padded - effective
    out = span // stride + 1
    division = _side_division(_span_text(size, kernel, padding, dilation), span, stride, "floor")
    return Axis(out, f"{division} + 1 = {out}", span % stride)


def _pool_axis(
    size: int, kernel: int, stride: int, padding: int, ceil_mode: bool, axis: str
) -> Axis:
    """torch's pooling_output_shape along one axis, with its formula and dropped pixels."""
    if 2 * padding > kernel:
        raise LayerError(
            "padding", f"padding {padding} is more than half the kernel {kernel} (torch refuses)"
        )
    span = size + 2 * padding - kernel
    rounding = "ceil" if ceil_mode else "floor"
    division = _side_division(_span_text(size, kernel, padding), span, stride, rounding)
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    text = f"{division} + 1"
    dropped_window = ceil_mode and (out - 1) * stride >= size + padding
    if dropped_window:
        out -= 1  # torch drops a last window that would start in the padding
        text += " - 1"
    if out < 1:
        raise LayerError("kernel", f"output {axis} would be {text} = {out}, less than 1")
    return Axis(out, f"{text} = {out}", 0 if ceil_mode else span % stride, dropped_window)


def _join_axes(height: Axis, width: Axis) -> tuple[str, list[str]]:
    """One formula when both axes have the same, else ``H: ...; W: ...``; and the unused pixels."""
    unused = []
    for name, axis in (("row", height), ("column", width)):
        if axis.unused:
            plural = "" if axis.unused == 1 else "s"
            unused.append(
                f"the stride leaves {axis.unused} padded input {name}{plural} unused (floor)"
            )
    if height.formula == width.formula:
        return height.formula, unused
    return f"H: {height.formula}; W: {width.formula}", unused


def _params_text(weights_text: str, weights: int, biases: int) -> str:
    """Weights and biases, each named, then their sum: every side of each = is equal."""
    return (
        f"{weights_text} weights + {n(biases)} biases = {n(weights)} + {n(biases)}"
        f" = {n(weights + biases)} params"
    )


def _spatial_input(state: State, kind: str) -> m.Volume:
    if state.flattened:
        raise LayerError("kind", f"{kind} needs a spatial input, but it comes after flatten")
    return state.volume


def conv(layer: m.Conv, state: State) -> Result:
    vin = _spatial_input(state, "conv")
    for count, what in ((vin.channels, "input channels"), (layer.out_channels, "out_channels")):
        if count % layer.groups:
            raise LayerError("groups", f"{what} {count} are not divisible by groups {layer.groups}")
    args = (layer.kernel, layer.stride, layer.padding, layer.dilation)
    height = _axis_size(vin.height, *args, "height")
    width = _axis_size(vin.width, *args, "width")
    text, unused = _join_axes(height, width)
    out = m.Volume(height=height.size, width=width.size, channels=layer.out_channels)
    per_filter = layer.kernel * layer.kernel * (vin.channels // layer.groups)
    weights = per_filter * layer.out_channels
    biases = layer.out_channels if layer.bias else 0
    depth_term = f"{vin.channels}" if layer.groups == 1 else f"({vin.channels}/{layer.groups})"
    per_filter_text = f"{layer.kernel}*{layer.kernel}*{depth_term}"
    params_text = _params_text(f"{per_filter_text}*{layer.out_channels}", weights, biases)
    outputs = out.height * out.width * out.channels
    macs = outputs * per_filter
    macs_text = (
        f"{out.height}*{out.width}*{out.channels} outputs * {per_filter_text} MACs each"
        f" = {n(macs)} MACs"
    )
    effective = layer.dilation * (layer.kernel - 1) + 1
    return Result(
        out,
        text,
        weights,
        biases,
        macs,
        params_text,
        macs_text,
        (effective, layer.stride),
        unused=unused,
    )


def pool(layer: m.MaxPool | m.AvgPool, state: State) -> Result:
    vin = _spatial_input(state, layer.kind)
    stride = layer.stride or layer.kernel
    args = (layer.kernel, stride, layer.padding, layer.ceil_mode)
    height = _pool_axis(vin.height, *args, "height")
    width = _pool_axis(vin.width, *args, "width")
    text, unused = _join_axes(height, width)
    notes = []
    if layer.ceil_mode:
        notes.append("ceil mode: a last, partial window covers what floor would drop")
    if height.dropped_window or width.dropped_window:
        notes.append("ceil mode: a last window that would start in the padding is dropped (- 1)")
    out = m.Volume(height=height.size, width=width.size, channels=vin.channels)
    return Result(out, text, window=(layer.kernel, stride), notes=notes, unused=unused)


def _adaptive_window(size: int, out: int) -> tuple[int, int, bool]:
    """torch's adaptive pooling windows: (largest window, typical step, exact?)."""
    widest = max(-((-(i + 1) * size) // out) - (i * size) // out for i in range(out))
    return widest, max(1, size // out), size % out == 0


def adaptive_avg_pool(layer: m.AdaptiveAvgPool, state: State) -> Result:
    vin = _spatial_input(state, "adaptiveavgpool")
    size = layer.output_size
    out = m.Volume(height=size, width=size, channels=vin.channels)
    notes = [f"adaptive: the output is {size}x{size} whatever the input; torch picks the windows"]
    if (vin.height, vin.width) == (size, size):
        notes.append(f"the input is already {size}x{size}, so this layer is the identity")
    kernel, step, exact = _adaptive_window(vin.height, size)
    if not exact:
        notes.append("windows vary in size here; the receptive field uses the widest one")
    return Result(out, None, window=(kernel, step), notes=notes)


def same_volume(layer: m.Layer, state: State) -> Result:
    """relu, dropout, softmax and lrn keep the volume and hold no parameters."""
    if layer.kind == "lrn":
        _spatial_input(state, "lrn")
    return Result(state.volume, None, window=(1, 1))


def batchnorm(layer: m.BatchNorm, state: State) -> Result:
    del layer  # BatchNorm's numbers all come from the input
    channels = state.volume.channels
    return Result(
        state.volume,
        None,
        weights=channels,
        biases=channels,
        params_formula=f"{n(channels)} scales + {n(channels)} shifts = {n(2 * channels)} params",
        window=(1, 1),
        notes=["running mean and variance are buffers, not parameters"],
    )


def flatten(layer: m.Flatten, state: State) -> Result:
    del layer
    vin = state.volume
    count = vin.height * vin.width * vin.channels
    out = m.Volume(height=1, width=1, channels=count)
    text = f"{vin.height}*{vin.width}*{vin.channels} = {n(count)}"
    return Result(out, text, flattens=True)


def linear(layer: m.Linear, state: State) -> Result:
    if not state.flattened:
        raise LayerError("kind", "linear layer before flatten: add a flatten layer first")
    fan_in = state.volume.channels
    out = m.Volume(height=1, width=1, channels=layer.out_features)
    weights = fan_in * layer.out_features
    biases = layer.out_features if layer.bias else 0
    weights_text = f"{n(fan_in)}*{n(layer.out_features)}"
    return Result(
        out,
        None,
        weights,
        biases,
        weights,
        _params_text(weights_text, weights, biases),
        f"{weights_text} = {n(weights)} MACs",
    )


Rule = Callable[[m.Layer, State], Result]

RULES: dict[str, Callable[..., Result]] = {
    "conv": conv,
    "maxpool": pool,
    "avgpool": pool,
    "adaptiveavgpool": adaptive_avg_pool,
    "lrn": same_volume,
    "batchnorm": batchnorm,
    "relu": same_volume,
    "dropout": same_volume,
    "softmax": same_volume,
    "flatten": flatten,
    "linear": linear,
}


def apply(layer: m.Layer, state: State) -> Result:
    return RULES[layer.kind](layer, state)
