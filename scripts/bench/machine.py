"""The machine and the versions a run was measured on, read from the machine itself."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "torch",
    "onnxruntime-gpu",
    "onnxruntime",
    "numpy",
    "fastapi",
    "starlette",
    "uvicorn",
    "pillow",
    "httpx",
    "playwright",
)
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def os_name() -> str:
    try:
        release = Path("/etc/os-release").read_text()
    except OSError:
        return platform.platform()
    for line in release.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.platform()


def has_gpu() -> bool:
    return Path("/dev/nvidia0").exists()


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def command_output(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not available"
    lines = (done.stdout or done.stderr).strip().splitlines()  # `wrk -v` exits 1 after printing
    return lines[0] if lines else "?"


def git_head() -> str:
    return command_output(["git", "rev-parse", "--short", "HEAD"])


def git_dirty() -> bool:
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    return bool(out.stdout.strip())


def describe(chromium: str) -> list[str]:
    """Markdown bullet lines: machine, OS, versions, environment that changes BLAS speed."""
    cores = os.cpu_count() or 0
    accelerator = "an NVIDIA GPU present (not used)" if has_gpu() else "CPU only, no GPU"
    packages = ", ".join(f"{name} {v}" for name in PACKAGES if (v := version(name)) is not None)
    blas_env = ", ".join(f"{name}={os.environ.get(name, '(unset)')}" for name in BLAS_ENV)
    head = git_head() + (" with uncommitted changes" if git_dirty() else "")
    return [
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- CPU: {cores}-core {cpu_model()} ({platform.machine()}), {accelerator}",
        f"- Memory: {memory_gib():.1f} GiB; OS: {os_name()}; kernel {platform.release()}",
        f"- Python {platform.python_version()}; {packages}",
        f"- Chromium: {command_output([chromium, '--version'])}",
        f"- wrk: {command_output(['wrk', '-v']) if _which('wrk') else 'not installed'}",
        f"- ConvAtlas commit: {head}",
        f"- BLAS environment of the run: {blas_env}",
    ]


def _which(program: str) -> bool:
    return any(
        (Path(folder) / program).exists() for folder in os.environ.get("PATH", "").split(":")
    )
