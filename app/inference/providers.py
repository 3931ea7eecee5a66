"""Which ONNX Runtime execution provider to use: CUDA when it really works, otherwise the CPU.

onnxruntime-gpu lists CUDAExecutionProvider even on a machine without a GPU, and asking it for a
session there prints a page of errors before falling back. So the choice is made once, quietly:
no NVIDIA driver means CPU without asking ORT at all; with a driver, a tiny probe model is run on
CUDA while ORT's log output is captured, and its first error line becomes the stated reason.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import io
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np
import onnxruntime as ort

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
NVIDIA_DRIVER = "libcuda.so.1"
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")

Requested = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class ProviderChoice:
    requested: Requested
    provider: str  # CUDA or CPU: what sessions are asked for first
    reason: str  # one plain sentence: why this provider

    @property
    def session_providers(self) -> list[str]:
        # With CUDA, ORT still places the few nodes CUDA lacks (shape arithmetic) on the CPU.
        return [CUDA, CPU] if self.provider == CUDA else [CPU]


def choose_provider(requested: Requested) -> ProviderChoice:
    """The provider to use for ``requested`` ("auto", "cpu" or "cuda") on this machine."""
    if requested == "cpu":
        return ProviderChoice(requested, CPU, "the CPU was requested (CONVATLAS_PROVIDERS=cpu)")
    problem = cuda_problem()
    if problem is None:
        return ProviderChoice(requested, CUDA, "CUDA works: a probe model ran on the GPU")
    prefix = "CUDA was requested but cannot run" if requested == "cuda" else "running on the CPU"
    return ProviderChoice(requested, CPU, f"{prefix}: {problem}")


def cuda_problem() -> str | None:
    """Why CUDA cannot run here, or None when a probe model really ran on it."""
    if CUDA not in ort.get_available_providers():
        return "this onnxruntime build has no CUDA provider"
    if not nvidia_driver_present():
        return f"no NVIDIA driver ({NVIDIA_DRIVER} not found)"
    preload_pip_cuda()
    return _probe()


def nvidia_driver_present() -> bool:
    try:
        ctypes.CDLL(NVIDIA_DRIVER)
    except OSError:
        return False
    return True


def preload_pip_cuda() -> None:
    """Load CUDA and cuDNN from the nvidia-* pip packages, when that is where they come from."""
    if importlib.util.find_spec("nvidia") is None:
        return
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its warnings
        ort.preload_dlls()


def _probe() -> str | None:
    model = (resources.files("app.inference") / "data" / "cuda_probe.onnx").read_bytes()
    with captured_stderr() as log:
        try:
            session = ort.InferenceSession(model, providers=[CUDA])
            session.run(None, {"x": np.ones((1, 1, 4, 4), dtype=np.float32)})
            providers = session.get_providers()
        except Exception as error:  # any ORT failure means no CUDA; its text says why
            return f"the CUDA provider failed: {str(error).splitlines()[0]}"
    if providers[:1] == [CUDA]:
        return None
    return f"the CUDA provider did not start ({_first_error(log.getvalue())})"


def _first_error(log: str) -> str:
    lines = [ANSI_COLOUR.sub("", line).strip() for line in log.splitlines()]
    for marker in ("FAIL : ", "Failed to create CUDAExecutionProvider"):
        for line in lines:
            if marker in line:
                return line[line.index(marker) :].removeprefix("FAIL : ")
    return "onnxruntime gave no reason"


@contextlib.contextmanager
def captured_stderr() -> Iterator[io.StringIO]:
    """Capture what native code writes to file descriptor 2 (ORT logs there, not to sys.stderr).

    The descriptor is process-wide, so this is only used for the one-off probe.
    """
    log = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield log
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            log.write(sink.read().decode("utf-8", "replace"))
