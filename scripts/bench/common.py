"""What every section shares: where things are, and the model repository they run on."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from app.inference.service import InferenceService
from app.repository.manifest import Manifest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
BENCH_MODELS = ROOT / "artifacts" / "bench" / "models"
INFERENCE_NETS = ("alexnet-lecture", "alexnet-torchvision", "zfnet-lecture", "vgg16")
ALEXNET = "alexnet-torchvision"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Context:
    """Options of this run, handed to every section."""

    models_root: Path
    chromium: Path
    quick: bool  # fewer rounds and shorter loads: a smoke test of the suite, not figures


@dataclass(frozen=True)
class BuildResult:
    command: str
    seconds: float
    returncode: int
    tail: str


def build_models(root: Path, ids: tuple[str, ...] | None = None) -> BuildResult:
    """`convatlas models build --untrained` into ``root``: a no-op (~1 s a net) when built."""
    command = [sys.executable, "-m", "app.cli", "models", "build", "--untrained"]
    command += ["--root", str(root), *(ids or ())]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    shown = f"convatlas models build --untrained --root {display(root)} {' '.join(ids or ())}"
    tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
    return BuildResult(shown.strip(), time.monotonic() - started, done.returncode, tail[0])


def service_session(service: InferenceService, manifest: Manifest, which: str) -> Any:
    """The ONNX Runtime session the service loads for a net's ``which`` file ("model" or
    "features"), loaded (and checked) exactly as a request loads it, with the service's options.

    The service has no public accessor for it: this is the one place the suite reaches in.
    """
    file: Literal["model", "features"] = "model" if which == "model" else "features"
    store = service._backend.store  # the default, in-process backend (local.py)
    return store.session_for(store.batch_key(manifest, file)).session


def display(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process, from /proc (None once it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None
