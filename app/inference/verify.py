"""ONNX Runtime's side of the build-time parity check, run by `convatlas models build`.

The build (torch) and the runtime (ONNX Runtime) live in separate layers, so the build runs this
module as a subprocess: ``python -m app.inference.verify MODEL FEATURES DATA.npz`` runs both ONNX
files on the CPU with the inputs the build saved and prints, as JSON, how far ONNX Runtime's
outputs are from torch's. The CPU provider is used so the numbers compare like with like.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from app.inference.providers import CPU

FEATURE_PREFIX = "feature:"


def max_abs_diff(ours: NDArray[np.float32], reference: NDArray[np.float32]) -> float:
    if ours.shape != reference.shape:
        return float("inf")
    return float(np.max(np.abs(ours - reference)))


def scaled_diff(ours: NDArray[np.float32], reference: NDArray[np.float32]) -> float:
    """max |ours - reference| / max(1, max |reference|): absolute near 0, relative beyond 1."""
    return max_abs_diff(ours, reference) / max(1.0, float(np.max(np.abs(reference))))


def parity(model: Path, features: Path, data: Path) -> dict[str, object]:
    """How far ONNX Runtime's outputs are from the reference outputs stored in ``data``."""
    arrays = np.load(data)
    classifier = ort.InferenceSession(str(model), providers=[CPU])
    logits = classifier.run(None, {"input": arrays["input"]})[0]
    extractor = ort.InferenceSession(str(features), providers=[CPU])
    names = [output.name for output in extractor.get_outputs()]
    maps = extractor.run(None, {"input": arrays["features_input"]})
    return {
        "onnxruntime": ort.__version__,
        "max_abs_diff": max_abs_diff(logits, arrays["logits"]),
        "max_abs_reference": float(np.max(np.abs(arrays["logits"]))),
        "scaled_diff": scaled_diff(logits, arrays["logits"]),
        "features_scaled_diff": max(
            scaled_diff(ours, arrays[FEATURE_PREFIX + name])
            for ours, name in zip(maps, names, strict=True)
        ),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m app.inference.verify MODEL FEATURES DATA.npz", file=sys.stderr)
        return 2
    model, features, data = (Path(arg) for arg in argv)
    print(json.dumps(parity(model, features, data)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
