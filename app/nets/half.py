"""fp16 copies of the nets, for scripts/gpu-check's half-precision timings only.

    python -m app.nets.half OUT_DIR ID...   writes OUT_DIR/<id>.onnx (input and output float16)

They are built with the untrained seed: speed does not depend on the weights, and these files
are never served.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from app.nets.builder import build
from app.nets.export import OUTPUT_NAME, export
from app.specs import builtin_registry


def export_half(spec_id: str, path: Path) -> None:
    spec = builtin_registry().get(spec_id)
    net = build(spec).half()
    example = torch.zeros(2, spec.input.channels, spec.input.height, spec.input.width)
    export(net, example.half(), path, [OUTPUT_NAME])


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m app.nets.half OUT_DIR ID...", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for spec_id in argv[1:]:
        target = out / f"{spec_id}.onnx"
        if target.exists():  # the seed fixes the file: one made earlier is the same
            continue
        partial = target.with_name(f".{target.name}.partial")
        export_half(spec_id, partial)
        os.replace(partial, target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
