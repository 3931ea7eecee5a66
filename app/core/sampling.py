"""The first layer's sampling grid: where conv1's units look in the input, and what they miss.

Along one axis, unit i of a conv with kernel K, stride S and padding P sees input pixels
i*S - P to i*S - P + K - 1; the number of units is the calculator's output size. From that:
how many windows cover each input pixel, and which pixels no window covers. AlexNet's 11x11 at
stride 4 overlaps its neighbours by 7 pixels; ZFNet's 7x7 at stride 2 by 5; the lecture's 7x7 at
stride 4 by 3, and with the 55 units the lecture states (where the arithmetic gives 56) the last
columns and rows of the image are never seen.

Pure Python; the unit counts come from the calculator.
"""

from __future__ import annotations

from collections import Counter

from app.core.calculator import compute_table
from app.core.table import Frozen
from app.specs import models as m


class Coverage(Frozen):
    """One axis of conv1 (the same along both: square kernels, square inputs here)."""

    side: int
    kernel: int
    stride: int
    padding: int
    units: int
    starts: list[int]  # each unit's first input pixel (negative: in the padding)
    counts: list[int]  # windows covering each input pixel
    overlap: int  # pixels two neighbouring windows share (kernel - stride, at least 0)
    histogram: dict[int, int]  # windows per pixel -> pixels
    uncovered_columns: list[int]
    uncovered_pixels: int  # of the whole side x side image


class FirstLayer(Frozen):
    net: str | None
    name: str
    layer: str
    coverage: Coverage
    stated_units: int | None  # the units the lecture states, where it states a different count
    stated: Coverage | None  # the coverage with the lecture's count of units


def coverage(side: int, kernel: int, stride: int, padding: int, units: int) -> Coverage:
    counts = [0] * side
    starts = [i * stride - padding for i in range(units)]
    for start in starts:
        for pixel in range(max(start, 0), min(start + kernel, side)):
            counts[pixel] += 1
    uncovered = [pixel for pixel, count in enumerate(counts) if count == 0]
    covered = side - len(uncovered)
    return Coverage(
        side=side,
        kernel=kernel,
        stride=stride,
        padding=padding,
        units=units,
        starts=starts,
        counts=counts,
        overlap=max(kernel - stride, 0),
        histogram=dict(sorted(Counter(counts).items())),
        uncovered_columns=uncovered,
        uncovered_pixels=side * side - covered * covered,
    )


def _stated_units(layer: m.Conv) -> int | None:
    """The output width a lecture figure on this layer states, if any."""
    for figure in layer.lecture:
        if figure.quantity == "output" and isinstance(figure.value, list):
            return figure.value[1]
        if figure.quantity == "output_width" and isinstance(figure.value, int):
            return figure.value
    return None


def first_layer(spec: m.Spec) -> FirstLayer | None:
    """conv1's grid for a net whose first layer is a square conv on a square input."""
    index = next((i for i, layer in enumerate(spec.layers) if isinstance(layer, m.Conv)), None)
    if index is None or spec.input.height != spec.input.width:
        return None
    layer = spec.layers[index]
    assert isinstance(layer, m.Conv)
    if layer.dilation != 1:
        return None
    row = compute_table(spec).layers[index]
    side, args = spec.input.width, (layer.kernel, layer.stride, layer.padding)
    found = coverage(side, *args, row.output.width)
    stated = _stated_units(layer)
    differs = stated is not None and stated != row.output.width
    return FirstLayer(
        net=spec.id,
        name=spec.name,
        layer=row.name,
        coverage=found,
        stated_units=stated if differs else None,
        stated=coverage(side, *args, stated) if differs and stated else None,
    )
