"""ONNX Runtime's side of the build-time parity check: the exported files, run on the CPU, against
torch's outputs for the same inputs. The build (app/building) calls it in-process after the
export; the CPU provider is used so the numbers compare like with like."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from app.inference.providers import CPU
from app.repository.manifest import Parity

INPUT = "input"


class ParityFailed(ValueError):
    """ONNX Runtime's outputs differ from torch's beyond the tolerance."""


def max_abs_diff(ours: NDArray[np.float32], reference: NDArray[np.float32]) -> float:
    if ours.shape != reference.shape:
        return float("inf")
    return float(np.max(np.abs(ours - reference)))


def scaled_diff(ours: NDArray[np.float32], reference: NDArray[np.float32]) -> float:
    """max |ours - reference| / max(1, max |reference|): absolute near 0, relative beyond 1."""
    return max_abs_diff(ours, reference) / max(1.0, float(np.max(np.abs(reference))))


def parity(
    model: Path,
    features: Path,
    inputs: NDArray[np.float32],
    logits: NDArray[np.float32],
    feature_maps: Mapping[str, NDArray[np.float32]],
    tolerance: float,
) -> Parity:
    """How far ONNX Runtime's outputs are from torch's: the classifier on ``inputs``, the
    features model on ``inputs[:1]``; ParityFailed beyond ``tolerance``."""
    classifier = ort.InferenceSession(str(model), providers=[CPU])
    ours = classifier.run(None, {INPUT: inputs})[0]
    extractor = ort.InferenceSession(str(features), providers=[CPU])
    names = [output.name for output in extractor.get_outputs()]
    maps = extractor.run(None, {INPUT: inputs[:1]})
    result = Parity(
        batch=inputs.shape[0],
        max_abs_diff=max_abs_diff(ours, logits),
        max_abs_reference=float(np.max(np.abs(logits))),
        scaled_diff=scaled_diff(ours, logits),
        features_scaled_diff=max(
            scaled_diff(mine, feature_maps[name]) for mine, name in zip(maps, names, strict=True)
        ),
        tolerance=tolerance,
    )
    for key in ("scaled_diff", "features_scaled_diff"):
        value = getattr(result, key)
        if not value <= tolerance:
            raise ParityFailed(f"ONNX Runtime differs from torch: {key} {value:.2e}")
    return result


def onnxruntime_version() -> str:
    return str(ort.__version__)
