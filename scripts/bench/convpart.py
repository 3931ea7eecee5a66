"""A net's conv part as its own ONNX file: model.onnx cut where the flatten begins.

Timing it beside the whole net splits a run between the conv layers and the fully connected
ones, on the very graph the service runs (no extra outputs, unlike features.onnx, which returns
every layer's volume). Cut once per model file and kept in artifacts/bench/conv-part/.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx.utils import extract_model

from scripts.bench.common import ROOT

FOLDER = ROOT / "artifacts" / "bench" / "conv-part"
FLATTENS = frozenset({"Flatten", "Reshape"})
DENSE = frozenset({"Gemm", "MatMul"})


def conv_part_model(model: Path, sha256: str, input_name: str) -> Path:
    """The file holding ``model``'s graph from ``input_name`` to the flatten's input."""
    out = FOLDER / f"{model.parent.parent.name}-{sha256[:12]}.onnx"
    if not out.exists():
        FOLDER.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".partial")
        extract_model(str(model), str(partial), [input_name], [flatten_input(model)])
        partial.rename(out)
    return out


def flatten_input(model: Path) -> str:
    """The tensor that enters the flatten before the first fully connected layer."""
    graph = onnx.load(str(model), load_external_data=False).graph
    producers = {output: node for node in graph.node for output in node.output}
    dense = next(node for node in graph.node if node.op_type in DENSE)
    feeding = producers.get(dense.input[0])
    if feeding is not None and feeding.op_type in FLATTENS:
        return str(feeding.input[0])
    return str(dense.input[0])
