"""scripts/gpu-check (python -m app.gpu_check): run every net on an NVIDIA GPU, time it,
and fail if anything fell back.

1. CUDA must really work (the service's own quiet probe); otherwise it stops at once, exit 1.
2. It builds the models, untrained, into a scratch repository (artifacts/gpu-check/models);
   ``--models DIR`` times an existing repository instead and builds nothing.
3. Per net: a CUDA session whose first run is profiled; any compute node that ONNX Runtime placed
   on the CPU is a failure (shape arithmetic stays on the CPU by design and is allowed). Then
   ms/image at batch 1, 8 and 64 on CUDA (and images/s at 64), at 1 and 8 on the CPU, and the
   speed-up.
4. ``--fp16``: fp16 copies on CUDA at batch 1, 8 and 64; ``--tensorrt``: TensorRT (fp16) at the
   same batches, where onnxruntime offers it. Both stop adding nets when the time budget is spent.

``--allow-cpu`` runs all of it with the CPU standing in for CUDA: a self-test of this script on a
machine without a GPU, never a pass of the real check.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from app.inference.providers import CPU, CUDA, captured_stderr, cuda_problem
from app.repository.manifest import Manifest, ManifestError, read_manifest
from app.specs import builtin_registry

TENSORRT = "TensorrtExecutionProvider"
SCRATCH = Path("artifacts/gpu-check")
# ORT keeps these on the CPU on purpose: they compute shapes, not activations.
SHAPE_OPS = frozenset(
    {
        "Shape",
        "Gather",
        "Unsqueeze",
        "Squeeze",
        "Concat",
        "Slice",
        "Cast",
        "Constant",
        "ConstantOfShape",
        "Range",
        "Size",
        "Identity",
    }
)
BUDGET_S = 280.0


@dataclass
class Check:
    accelerated: str  # CUDA, or CPU under --allow-cpu
    deadline: float
    failures: list[str]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.monotonic()
    check = Check(CPU if args.allow_cpu else CUDA, started + args.budget, [])
    if not args.allow_cpu and (problem := cuda_problem()) is not None:
        print(f"gpu-check: FAIL: CUDA cannot run here: {problem}")
        return 1
    ids = args.nets or builtin_registry().ids()
    root = args.models or SCRATCH / "models"
    if args.models is None and _build(root, ids) != 0:
        print("gpu-check: FAIL: the models did not build")
        return 1
    manifests = _manifests(root, ids, check)
    _time_all(manifests, root, check)
    if args.fp16:
        _fp16(manifests, check)
    if args.tensorrt:
        _tensorrt(manifests, root, check)
    return _verdict(check, time.monotonic() - started, args.allow_cpu)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/gpu-check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nets", nargs="+", help="net ids (default: all)")
    parser.add_argument("--models", type=Path, help="time this built repository; build nothing")
    parser.add_argument("--fp16", action="store_true", help="also fp16 on CUDA at 1, 8, 64")
    parser.add_argument("--tensorrt", action="store_true", help="also TensorRT fp16 at 1, 8, 64")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for it all")
    parser.add_argument("--allow-cpu", action="store_true", help="self-test without a GPU")
    return parser


def _build(root: Path, ids: Sequence[str]) -> int:
    """Build ``ids`` untrained into ``root``, in this process; 1 when one failed."""
    from app.building.build import build_models  # torch loads only when there is a build

    outcomes = build_models(ids, untrained=True, root=root)
    return 1 if any(outcome.status == "failed" for outcome in outcomes) else 0


def _manifests(root: Path, ids: Sequence[str], check: Check) -> dict[str, Manifest]:
    found = {}
    for spec_id in ids:
        try:
            found[spec_id] = read_manifest(root / spec_id)
        except ManifestError as error:
            check.failures.append(f"{spec_id}: {error}")
    return found


def _time_all(manifests: dict[str, Manifest], root: Path, check: Check) -> None:
    head = ("batch 1", "batch 8", "batch 64", "batch 64", "CPU b1", "CPU b8")
    units = ("ms/image", "ms/image", "ms/image", "images/s", "ms/image", "ms/image")
    print("\n" + f"{'net':<20}" + "".join(f" {h:>9}" for h in head) + "  speed-up")
    print(f"{'':<20}" + "".join(f" {u:>9}" for u in units) + "  b1 / b8")
    for spec_id, manifest in manifests.items():
        path = root / spec_id / manifest.model.path
        session = _session(path, [check.accelerated, CPU] if check.accelerated == CUDA else [CPU])
        fallen = _placement_problem(session, manifest, check.accelerated)
        if fallen:
            check.failures.append(f"{spec_id}: {fallen}")
        fast = [_ms_per_image(session, manifest, batch) for batch in (1, 8, 64)]
        cpu_session = session if check.accelerated == CPU else _session(path, [CPU], False)
        slow = [_ms_per_image(cpu_session, manifest, batch, quick=True) for batch in (1, 8)]
        ratios = " / ".join(f"{s / f:.1f}x" for s, f in zip(slow, fast[:2], strict=True))
        accelerated = f"{fast[0]:>9.2f} {fast[1]:>9.2f} {fast[2]:>9.2f} {1000 / fast[2]:>9.0f}"
        print(f"{spec_id:<20} {accelerated} {slow[0]:>9.1f} {slow[1]:>9.1f}  {ratios}")


def _session(path: Path, providers: list[Any], profile: bool = True) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.enable_profiling = profile
    options.profile_file_prefix = str(SCRATCH / "profile")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


def _placement_problem(
    session: ort.InferenceSession,
    manifest: Manifest,
    wanted: str,
    dtype: type[np.floating[Any]] = np.float32,
) -> str:
    """'' when every compute node ran on ``wanted``; else which ones did not."""
    if session.get_providers()[0] != wanted:
        return f"the session runs on {session.get_providers()[0]}, not {wanted}"
    session.run(None, _feed(manifest, 1, dtype))
    profile = Path(session.end_profiling())
    events = json.loads(profile.read_text())
    profile.unlink()
    elsewhere = sorted(
        {
            f"{e['args']['op_name']} on {e['args']['provider']}"
            for e in events
            if e.get("cat") == "Node"
            and "provider" in e.get("args", {})
            and e["args"]["provider"] != wanted
            and e["args"]["op_name"] not in SHAPE_OPS
        }
    )
    return f"fell back: {', '.join(elsewhere)}" if elsewhere else ""


def _feed(manifest: Manifest, batch: int, dtype: type[np.floating[Any]]) -> dict[str, Any]:
    shape = (batch, manifest.input.channels, manifest.input.height, manifest.input.width)
    return {manifest.input.name: np.random.default_rng(0).standard_normal(shape).astype(dtype)}


def _ms_per_image(
    session: ort.InferenceSession,
    manifest: Manifest,
    batch: int,
    quick: bool = False,
    dtype: type[np.floating[Any]] = np.float32,
) -> float:
    """Median ms per image over repeated runs after a warm-up; ``quick`` for the slow CPU."""
    feed = _feed(manifest, batch, dtype)
    session.run(None, feed)  # warm-up: cuDNN picks its algorithms, the arena grows
    runs, enough_s = (3, 1.0) if quick else (20, 2.0)
    times: list[float] = []
    while len(times) < runs and (sum(times) < enough_s or len(times) < 2):
        started = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - started)
    return float(np.median(times)) * 1000 / batch


def _fp16(manifests: dict[str, Manifest], check: Check) -> None:
    out = SCRATCH / "fp16"
    from app.nets import half  # torch loads only for --fp16

    if half.main([str(out), *manifests]) != 0:
        check.failures.append("fp16: the fp16 export failed")
        return
    print(f"\n{'fp16 on ' + check.accelerated:<32} {'b1':>8} {'b8':>8} {'b64':>8}  ms/image")
    for spec_id, manifest in manifests.items():
        if time.monotonic() > check.deadline:
            print(f"{spec_id:<32} skipped: the time budget is spent")
            continue
        providers = [check.accelerated, CPU] if check.accelerated == CUDA else [CPU]
        session = _session(out / f"{spec_id}.onnx", providers)
        fallen = _placement_problem(session, manifest, check.accelerated, np.float16)
        if fallen:
            check.failures.append(f"{spec_id} fp16: {fallen}")
        times = [_ms_per_image(session, manifest, b, dtype=np.float16) for b in (1, 8, 64)]
        print(f"{spec_id:<32} {times[0]:>8.2f} {times[1]:>8.2f} {times[2]:>8.2f}")


def _tensorrt(manifests: dict[str, Manifest], root: Path, check: Check) -> None:
    if check.accelerated != CUDA:
        print("\nTensorRT: skipped in the CPU self-test")
        return
    if TENSORRT not in ort.get_available_providers():
        print("\nTensorRT: this onnxruntime build does not offer it")
        return
    print(f"\n{'TensorRT fp16':<32} {'b1':>8} {'b8':>8} {'b64':>8}  ms/image")
    for spec_id, manifest in manifests.items():
        if time.monotonic() > check.deadline:
            print(f"{spec_id:<32} skipped: the time budget is spent")
            continue
        path = root / spec_id / manifest.model.path
        # ORT prints its own retry notice on stdout and logs on stderr when TensorRT is missing.
        with contextlib.redirect_stdout(io.StringIO()) as said, captured_stderr():
            session = _session(path, _trt(manifest), profile=False)
        if session.get_providers()[0] != TENSORRT:
            missing = "TensorRT libraries not found" if "TensorRT" in said.getvalue() else ""
            print(f"TensorRT: unavailable here ({missing or 'onnxruntime could not start it'})")
            return
        times = [_ms_per_image(session, manifest, b) for b in (1, 8, 64)]
        print(f"{spec_id:<32} {times[0]:>8.2f} {times[1]:>8.2f} {times[2]:>8.2f}")


def _trt(manifest: Manifest) -> list[Any]:
    side = f"{manifest.input.channels}x{manifest.input.height}x{manifest.input.width}"
    name = manifest.input.name
    options = {
        "trt_fp16_enable": True,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(SCRATCH / "trt-cache"),
        "trt_profile_min_shapes": f"{name}:1x{side}",
        "trt_profile_opt_shapes": f"{name}:8x{side}",
        "trt_profile_max_shapes": f"{name}:64x{side}",
    }
    return [(TENSORRT, options), CUDA, CPU]


def _verdict(check: Check, seconds: float, self_test: bool) -> int:
    print(f"\ngpu-check: {seconds:.0f} s")
    for failure in check.failures:
        print(f"gpu-check: FAIL: {failure}")
    if check.failures:
        return 1
    if self_test:
        print("gpu-check: self-test passed on the CPU (--allow-cpu): no GPU was checked")
        return 0
    print("gpu-check: PASS: every net ran on CUDA")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
