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
    output_formula: str
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


def _axis_size(
    size: int, kernel: int, stride: int, padding: int, dilation: int, axis: str
) -> tuple[int, str, int]:
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
    kernel_term = f"{kernel}" if dilation == 1 else f"{effective}"
    text = f"({size} - {kernel_term} + 2*{padding}) / {stride} + 1 = {out}"
    return out, text, span % stride


def _pool_axis(
    size: int, kernel: int, stride: int, padding: int, ceil_mode: bool, axis: str
) -> tuple[int, str, int]:
    """torch's pooling_output_shape along one axis, with its formula and dropped pixels."""
    if 2 * padding > kernel:
        raise LayerError(
            "padding", f"padding {padding} is more than half the kernel {kernel} (torch refuses)"
        )
    span = size + 2 * padding - kernel
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    if out < 1:
        raise LayerError(
            "kernel",
            f"output {axis} would be {out}: ({size} - {kernel} + 2*{padding}) / {stride} + 1 < 1",
        )
    core = f"({size} - {kernel} + 2*{padding}) / {stride}"
    text = f"ceil({core}) + 1 = {out}" if ceil_mode else f"{core} + 1 = {out}"
    dropped = 0 if ceil_mode else span % stride
    return out, text, dropped


def _join_axes(height: tuple[int, str, int], width: tuple[int, str, int]) -> tuple[str, list[str]]:
    unused = []
    for axis, (_, _, dropped) in (("row", height), ("column", width)):
        if dropped:
            plural = "" if dropped == 1 else "s"
            unused.append(f"the stride leaves {dropped} padded input {axis}{plural} unused (floor)")
    if height[1] == width[1]:
        return height[1], unused
    return f"H: {height[1]}; W: {width[1]}", unused


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
    out = m.Volume(height=height[0], width=width[0], channels=layer.out_channels)
    per_filter = layer.kernel * layer.kernel * (vin.channels // layer.groups)
    weights = per_filter * layer.out_channels
    biases = layer.out_channels if layer.bias else 0
    depth_term = f"{vin.channels}" if layer.groups == 1 else f"({vin.channels}/{layer.groups})"
    params_text = (
        f"{layer.kernel}*{layer.kernel}*{depth_term}*{layer.out_channels} = {n(weights)} weights"
        f" + {n(biases)} biases = {n(weights + biases)} params"
    )
    outputs = out.height * out.width * out.channels
    macs = outputs * per_filter
    macs_text = (
        f"{out.height}*{out.width}*{out.channels} outputs x "
        f"{layer.kernel}*{layer.kernel}*{depth_term} = {n(macs)} MACs"
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
    out = m.Volume(height=height[0], width=width[0], channels=vin.channels)
    return Result(out, text, window=(layer.kernel, stride), notes=notes, unused=unused)


def _adaptive_window(size: int, out: int) -> tuple[int, int, bool]:
    """torch's adaptive pooling windows: (largest window, typical step, exact?)."""
    widest = max(-((-(i + 1) * size) // out) - (i * size) // out for i in range(out))
    return widest, max(1, size // out), size % out == 0


def adaptive_avg_pool(layer: m.AdaptiveAvgPool, state: State) -> Result:
    vin = _spatial_input(state, "adaptiveavgpool")
    size = layer.output_size
    out = m.Volume(height=size, width=size, channels=vin.channels)
    text = f"{vin.height}x{vin.width} -> {size}x{size} (adaptive: torch picks the windows)"
    notes = []
    if (vin.height, vin.width) == (size, size):
        notes.append(f"the input is already {size}x{size}, so this layer is the identity")
    kernel, step, exact = _adaptive_window(vin.height, size)
    if not exact:
        notes.append("windows vary in size here; the receptive field uses the widest one")
    return Result(out, text, window=(kernel, step), notes=notes)


def same_volume(layer: m.Layer, state: State) -> Result:
    """relu, dropout, softmax and lrn keep the volume and hold no parameters."""
    if layer.kind == "lrn":
        _spatial_input(state, "lrn")
    return Result(state.volume, "same volume as the input", window=(1, 1))


def batchnorm(layer: m.BatchNorm, state: State) -> Result:
    del layer  # BatchNorm's numbers all come from the input
    channels = state.volume.channels
    return Result(
        state.volume,
        "same volume as the input",
        weights=channels,
        biases=channels,
        params_formula=(
            f"{n(channels)} scales + {n(channels)} shifts = {n(2 * channels)} params "
            "(running mean and variance are buffers, not parameters)"
        ),
        window=(1, 1),
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
    return Result(
        out,
        f"{n(fan_in)} -> {n(layer.out_features)}",
        weights,
        biases,
        weights,
        f"{n(fan_in)}*{n(layer.out_features)} = {n(weights)} weights + {n(biases)} biases"
        f" = {n(weights + biases)} params",
        f"{n(fan_in)}*{n(layer.out_features)} = {n(weights)} MACs",
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
