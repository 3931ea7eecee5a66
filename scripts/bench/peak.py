"""The reference peak: a 2-thread fp32 GEMM, measured in the same run as what it judges.

Three GEMMs, each pinned to 2 threads: torch.mm (torch.set_num_threads), numpy's matmul
(OpenBLAS; the thread count comes from OPENBLAS_NUM_THREADS, read back through its own API) and
ONNX Runtime's MatMul (MLAS, the kernels ORT's convolutions use; intra_op_num_threads=2). The
peak is the best median of them: the most this machine showed it can do, so "% of peak" is never
flattered by a slow reference.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from numpy.typing import NDArray
from onnx import TensorProto, helper

from scripts.bench.stats import Spread, seconds, spread

THREADS = 2
SIZES = (1024, 1536, 2048, 3072)
REPEATS = 5


@dataclass(frozen=True)
class GemmResult:
    method: str
    size: int
    gflops: Spread


@dataclass(frozen=True)
class Peak:
    results: list[GemmResult]

    @property
    def best(self) -> GemmResult:
        return max(self.results, key=lambda result: result.gflops.median)

    @property
    def gflops(self) -> float:
        return self.best.gflops.median


def measure_peak() -> Peak:
    results: list[GemmResult] = []
    for size in SIZES:
        a, b = _operands(size)
        for method, multiply in _methods(a, b).items():
            multiply()  # warm-up: thread pools start, pages fault in
            flops = gemm_flop(size)
            times = [seconds(multiply) for _ in range(REPEATS)]
            results.append(GemmResult(method, size, spread([flops / t / 1e9 for t in times])))
    return Peak(results)


def gemm(method: str, size: int) -> Callable[[], object]:
    """One of the GEMMs above as a runner, for timing side by side with something else."""
    a, b = _operands(size)
    return _methods(a, b)[method]


def gemm_flop(size: int) -> float:
    return 2.0 * size**3


def _operands(size: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    return a, b


def _methods(a: NDArray[np.float32], b: NDArray[np.float32]) -> dict[str, Callable[[], object]]:
    torch.set_num_threads(THREADS)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    session = _ort_matmul(a.shape[0])
    return {
        "torch.mm": lambda: torch.mm(ta, tb),
        "numpy matmul (OpenBLAS)": lambda: a @ b,
        "onnxruntime MatMul (MLAS)": lambda: session.run(None, {"a": a, "b": b}),
    }


def _ort_matmul(size: int) -> ort.InferenceSession:
    shape = [size, size]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "gemm",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, shape),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, shape),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )


def openblas_state() -> str:
    """OpenBLAS's kernel and thread count as it reports them (what threadpoolctl would read)."""
    paths = {
        line.split()[-1]
        for line in Path("/proc/self/maps").read_text().splitlines()
        if "openblas" in line.lower() and line.split()[-1].startswith("/")
    }
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", ""), ("scipy_openblas", "")):
            corename = getattr(library, f"{prefix}_get_corename{suffix}", None)
            threads = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
            if corename is not None and threads is not None:
                corename.restype = ctypes.c_char_p
                return f"OpenBLAS kernel {corename().decode()}, {threads()} threads"
    return "OpenBLAS not found in this process"


def peak_rows(peak: Peak, label: str) -> list[tuple[str, str, int, str]]:
    """Table rows: when it was measured, which GEMM, the matrix size, GFLOP/s."""
    ordered = sorted(peak.results, key=lambda r: (r.method, r.size))
    return [(label, r.method, r.size, r.gflops.text(1)) for r in ordered]
