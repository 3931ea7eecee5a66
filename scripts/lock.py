"""python -m scripts.lock: write constraints.txt, the tested set `make` installs with.

It records every distribution installed in the running environment (the .venv that `make test`
ran in), so run it from `make lock` after a change to pyproject.toml and a green `make test`.
Two kinds of lines are added that this machine cannot install but other machines do:

- ``onnxruntime``, pinned to the tested onnxruntime-gpu version: the CPU build that macOS and
  Linux aarch64 install instead (pyproject.toml's environment markers);
- the CUDA and cuDNN wheels of the ``gpu`` extra (the GPU image), as pip resolves them for
  Linux x86_64: pinned, so every GPU image gets the same libraries, but run here only by a CPU.

A local version label (torch's ``+cpu``) is dropped: ``torch==2.13.0`` admits the CPU build
this machine has and PyPI's build of the same release elsewhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "constraints.txt"
PROJECT = "convatlas"
# Installed with the interpreter rather than by the project; pip pins them itself.
TOOLING = {"pip", "setuptools", "wheel"}
GPU_RUNTIME = "onnxruntime-gpu"
CPU_RUNTIME = "onnxruntime"
GPU_EXTRAS = "cuda,cudnn"

HEADER = """\
# The tested set: every distribution the last green `make test` ran with. `make` installs with
# `-c constraints.txt`; a constraint on a package that is not asked for is ignored, so one file
# serves every extra and platform. Written by `make lock` (python -m scripts.lock); not by hand.
"""


def installed() -> dict[str, str]:
    """Name -> release (no local label) of every distribution in this environment."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name in TOOLING or name == PROJECT:
            continue
        found[name] = Version(dist.version).public
    return found


def gpu_libraries(version: str) -> dict[str, str]:
    """What ``onnxruntime-gpu[cuda,cudnn]==version`` brings here (Linux x86_64, where the tests
    run and the GPU image is built), as pip resolves it: metadata only, nothing installed."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet"]
        command += ["--ignore-installed", "--report", str(report)]
        command += [f"{GPU_RUNTIME}[{GPU_EXTRAS}]=={version}"]
        subprocess.run(command, check=True)
        resolved = json.loads(report.read_text(encoding="utf-8"))["install"]
    return {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in resolved
    }


def lines() -> list[str]:
    tested = installed()
    gpu = tested[GPU_RUNTIME]
    out = [f"{name}=={version}" for name, version in sorted(tested.items())]
    out += ["", f"# {CPU_RUNTIME}: the CPU build macOS and Linux aarch64 install instead"]
    out += [f"{CPU_RUNTIME}=={gpu}"]
    extra = {
        name: version
        for name, version in gpu_libraries(gpu).items()
        if name not in tested and name != CPU_RUNTIME
    }
    out += ["", f"# the `gpu` extra's CUDA libraries ({GPU_RUNTIME}[{GPU_EXTRAS}]), resolved"]
    out += [f"{name}=={version}" for name, version in sorted(extra.items())]
    return out


def main() -> None:
    OUT.write_text(HEADER + "\n".join(lines()) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
