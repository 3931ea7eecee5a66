"""conv1's filters as one picture, for a net built from a pretrained checkpoint.

A trained first layer learns edge, colour and blob detectors that a student can see; random
weights show noise, so an untrained build draws nothing. ``filter_grid`` is the arithmetic
(numpy and Pillow only): each filter min-max normalised on its own (over all its channels, so
its colours keep their balance), RGB for a 3-channel input (grey for 1), the filters in order,
row by row, each weight scaled up to ``scale`` x ``scale`` pixels, 1 px white gaps between them.
``write_filters`` takes the weights from the torch net and writes the PNG in the net's folder.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image
from torch import nn

from app.core.calculator import compute_table
from app.nets import weights as w
from app.repository.files import write_atomic
from app.repository.layout import FILTERS_FILE
from app.repository.manifest import FiltersFile
from app.specs import Spec
from app.specs.models import Conv

GAP = 1  # px between two filters
GAP_VALUE = 255  # white: no filter pixel is told apart from the gap by its value alone
MIN_CELL = 33  # px a filter is drawn at least: 11x11 -> x3, 7x7 -> x5, 3x3 -> x11
FLAT_VALUE = 128  # a filter whose weights are all equal has no contrast: mid grey


def grid_scale(kernel: int) -> int:
    """The integer factor that draws a ``kernel``-pixel filter at least MIN_CELL pixels wide."""
    return max(1, math.ceil(MIN_CELL / kernel))


def grid_columns(count: int) -> int:
    """Columns of the grid: as square as the count allows (64 filters: 8 x 8)."""
    return math.ceil(math.sqrt(count))


def normalised(weights: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """(filters, channels, kh, kw) -> 0..255 per filter: its minimum 0, its maximum 255."""
    values = weights.astype(np.float64)
    low = values.min(axis=(1, 2, 3), keepdims=True)
    span = values.max(axis=(1, 2, 3), keepdims=True) - low
    scaled = np.where(span > 0, (values - low) / np.where(span > 0, span, 1) * 255, FLAT_VALUE)
    return np.rint(scaled).astype(np.uint8)


def filter_grid(weights: npt.NDArray[np.floating], scale: int) -> Image.Image:
    """The filters (filters, channels, kh, kw) as one image, filter i at row i // columns,
    column i % columns; channels 3 (RGB) or 1 (grey)."""
    count, channels, height, width = weights.shape
    if channels not in (1, 3):
        raise ValueError(f"filters of {channels} channels are not an image")
    columns = grid_columns(count)
    rows = math.ceil(count / columns)
    cell_h, cell_w = height * scale, width * scale
    canvas = np.full(
        (rows * cell_h + (rows - 1) * GAP, columns * cell_w + (columns - 1) * GAP, channels),
        GAP_VALUE,
        dtype=np.uint8,
    )
    pixels = normalised(weights).transpose(0, 2, 3, 1)  # -> (filters, kh, kw, channels)
    big = pixels.repeat(scale, axis=1).repeat(scale, axis=2)
    for index in range(count):
        top = (index // columns) * (cell_h + GAP)
        left = (index % columns) * (cell_w + GAP)
        canvas[top : top + cell_h, left : left + cell_w] = big[index]
    return Image.fromarray(
        canvas[:, :, 0] if channels == 1 else canvas, "L" if channels == 1 else "RGB"
    )


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _first_conv(spec: Spec) -> tuple[int, Conv] | None:
    for index, layer in enumerate(spec.layers):
        if isinstance(layer, Conv):
            return index, layer
    return None


def write_filters(net: nn.Module, spec: Spec, folder: Path) -> FiltersFile | None:
    """Draw the net's first conv into ``folder`` (atomically) and describe the file; None when
    its filters are not an image (no conv, or not 1 or 3 input channels per group)."""
    found = _first_conv(spec)
    module = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    if found is None or module is None:
        return None
    weights = module.weight.detach().cpu().numpy()
    count, channels, height, width = weights.shape
    if channels not in (1, 3):
        return None
    scale = grid_scale(max(height, width))
    path = folder / FILTERS_FILE
    image = filter_grid(weights, scale)
    write_atomic(path, png_bytes(image))
    return FiltersFile(
        path=FILTERS_FILE,
        bytes=path.stat().st_size,
        sha256=w.sha256_of(path),
        layer=compute_table(spec).layers[found[0]].name,
        count=count,
        channels=channels,
        kernel_height=height,
        kernel_width=width,
        columns=grid_columns(count),
        scale=scale,
        width=image.width,
        height=image.height,
    )
