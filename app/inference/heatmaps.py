"""A layer's output volume -> its most active channels as small grayscale PNGs."""

from __future__ import annotations

import base64
import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.inference.results import FeatureLayerMaps, Heatmap
from app.repository.manifest import FeatureOutput
from app.specs import Volume


def activity(volume: NDArray[np.float32]) -> NDArray[np.float64]:
    """Per channel of a (C, H, W) volume: the mean of its positive part (what a ReLU passes)."""
    positive = np.maximum(volume, 0, dtype=np.float64)
    result: NDArray[np.float64] = positive.mean(axis=(1, 2))
    return result


def most_active(volume: NDArray[np.float32], k: int) -> list[int]:
    """The ``k`` most active channels, most active first; ties go to the lower index."""
    order = np.argsort(-activity(volume), kind="stable")
    return [int(channel) for channel in order[:k]]


def fit(height: int, width: int, side: int) -> tuple[int, int]:
    """(height, width) shrunk to at most ``side`` a side, keeping the aspect; never enlarged."""
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def heatmap(channel_map: NDArray[np.float32], scale_max: float, side: int) -> tuple[str, int, int]:
    """A (H, W) map as a base64 8-bit PNG of at most side x side: 0 -> black, scale_max -> white."""
    height, width = fit(channel_map.shape[0], channel_map.shape[1], side)
    clipped = np.clip(channel_map, 0, None).astype(np.float32)
    image = Image.fromarray(clipped)  # float32 -> mode "F"
    if (height, width) != channel_map.shape:
        image = image.resize((width, height), Image.Resampling.BOX)  # BOX: the mean of each cell
    scaled = np.asarray(image) * (255.0 / scale_max) if scale_max > 0 else np.asarray(image) * 0
    pixels = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)  # uint8: mode "L"
    return base64.b64encode(buffer.getvalue()).decode("ascii"), width, height


def layer_maps(
    volume: NDArray[np.float32], output: FeatureOutput, k: int, side: int
) -> FeatureLayerMaps:
    """One layer's entry: its volume and its ``k`` most active channels on a shared scale."""
    channels = most_active(volume, k)
    scale_max = float(max(volume[c].max() for c in channels))
    levels = activity(volume)
    heatmaps = []
    for channel in channels:
        png, width, height = heatmap(volume[channel], scale_max, side)
        heatmaps.append(
            Heatmap(
                channel=channel,
                activity=float(levels[channel]),
                width=width,
                height=height,
                png=png,
            )
        )
    return FeatureLayerMaps(
        index=output.index,
        name=output.name,
        kind=output.kind,
        output=Volume(height=output.height, width=output.width, channels=output.channels),
        scale_max=max(scale_max, 0.0),
        channels=heatmaps,
    )
