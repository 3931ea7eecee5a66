"""fp16 copies of the nets, for scripts/gpu-check's half-precision timings only.

    python -m app.nets.half OUT_DIR ID...   writes OUT_DIR/<id>.onnx (input and output float16)

They are built with the untrained seed: speed does not depend on the weights, and these files
are never served. Each file has a stamp beside it (OUT_DIR/<id>.onnx.stamp.json) naming what
made it: the spec's fingerprint, the seed, torch's version and the file's sha256. A file is
reused only when its stamp still says so; one left by an older spec, another torch or a file
changed since is exported again.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from app.nets.builder import DEFAULT_SEED, build
from app.nets.describe import spec_fingerprint
from app.nets.export import OUTPUT_NAME, export
from app.nets.weights import sha256_of
from app.specs import Spec, builtin_registry


def export_half(spec_id: str, path: Path) -> None:
    spec = builtin_registry().get(spec_id)
    net = build(spec).half()
    example = torch.zeros(2, spec.input.channels, spec.input.height, spec.input.width)
    export(net, example.half(), path, [OUTPUT_NAME])


def stamp_path(target: Path) -> Path:
    return target.with_name(f"{target.name}.stamp.json")


def recipe(spec: Spec) -> dict[str, Any]:
    """What decides the fp16 file's bytes, besides the file itself."""
    return {"spec_sha256": spec_fingerprint(spec), "seed": DEFAULT_SEED, "torch": torch.__version__}


def is_current(target: Path, spec: Spec) -> bool:
    """The file is there, its stamp names this recipe, and the file is the one stamped."""
    try:
        stamp = json.loads(stamp_path(target).read_text(encoding="utf-8"))
        return bool(stamp["recipe"] == recipe(spec) and stamp["onnx_sha256"] == sha256_of(target))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def write_half(spec_id: str, target: Path) -> None:
    """Export to a partial file, then move it and its stamp into place (a crash leaves no file
    that a later run could take for finished)."""
    spec = builtin_registry().get(spec_id)
    stamp_path(target).unlink(missing_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    export_half(spec_id, partial)
    os.replace(partial, target)
    stamp = {"recipe": recipe(spec), "onnx_sha256": sha256_of(target)}
    stamp_path(target).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m app.nets.half OUT_DIR ID...", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for spec_id in argv[1:]:
        target = out / f"{spec_id}.onnx"
        if not is_current(target, builtin_registry().get(spec_id)):
            write_half(spec_id, target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
