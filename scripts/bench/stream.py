"""The reference memory bandwidth: how fast this machine streams fp32 weights, measured in the
same run as what it judges.

At batch 1 a fully connected layer reads each of its weights once and does 2 FLOPs with it: its
time is set by the memory, not by the cores. Five ways to stream, each on 2 threads:

- GEMVs, a 1 x K vector by a K x N matrix (N = 4096 outputs, as the nets' FC layers have) of
  GEMV_MIB MiB: ONNX Runtime's Gemm, transB=1 and the matrix an initializer (exactly as the nets'
  FC layers are exported, opened with the service's session options), torch's ``linear`` (what
  eager runs) and numpy's matmul (OpenBLAS's sgemv);
- plain reads of a READ_MIB MiB array: torch's ``sum`` and numpy's ``sum`` over two Python
  threads, half the array each (numpy lets go of the GIL in its loops).

The reference is the best median of them: the most this machine showed it can stream, so a
time computed from it is never too slow. inference.py then times that way beside each net, over
as many bytes as the net's FC weights: the caches (L3 may hold a good part of 100-500 MB on a
large Xeon) then favour the stream as much as they can favour the net.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
import torch
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from scripts.bench.peak import THREADS
from scripts.bench.stats import Spread, seconds, spread

GEMV_MIB = 256
READ_MIB = 512
OUTPUTS = 4096  # N of the GEMVs
REPEATS = 9
MIB = 1024 * 1024
FP32_BYTES = 4

Runner = Callable[[], object]
Factory = Callable[[ort.SessionOptions, int], Runner]


@dataclass(frozen=True)
class StreamResult:
    method: str
    nbytes: int  # read from memory per call
    gbps: Spread


@dataclass(frozen=True)
class Bandwidth:
    results: list[StreamResult]

    @property
    def best(self) -> StreamResult:
        return max(self.results, key=lambda result: result.gbps.median)

    @property
    def gbps(self) -> float:
        return self.best.gbps.median


def measure_stream(options: ort.SessionOptions) -> Bandwidth:
    """Each way in turn at its reference size, its operands made, timed and dropped before the
    next one's."""
    results: list[StreamResult] = []
    for method in METHODS:
        nbytes = (GEMV_MIB if method in GEMVS else READ_MIB) * MIB
        runner = streamer(method, options, nbytes)
        runner()  # warm-up: thread pools start, pages fault in
        times = [seconds(runner) for _ in range(REPEATS)]
        results.append(StreamResult(method, nbytes, spread([nbytes / t / 1e9 for t in times])))
        del runner
    return Bandwidth(results)


def streamer(method: str, options: ort.SessionOptions, nbytes: int) -> Runner:
    """One of the ways above over about ``nbytes`` (whole rows of OUTPUTS floats for a GEMV),
    as a runner, for timing side by side with something else (see ``operand_bytes``)."""
    torch.set_num_threads(THREADS)
    return METHODS[method](options, operand_bytes(method, nbytes))


def operand_bytes(method: str, nbytes: int) -> int:
    """The bytes one call of ``streamer(method, options, nbytes)`` reads."""
    unit = OUTPUTS * FP32_BYTES if method in GEMVS else FP32_BYTES
    return max(1, nbytes // unit) * unit


def stream_rows(bandwidth: Bandwidth, label: str) -> list[tuple[str, str, int, str]]:
    """Table rows: when it was measured, which way, the MiB read per call, GB/s."""
    return [
        (label, r.method, r.nbytes // MIB, r.gbps.text(1))
        for r in sorted(bandwidth.results, key=lambda r: r.method)
    ]


def _matrix(nbytes: int) -> NDArray[np.float32]:
    """OUTPUTS x K fp32, every page written (np.zeros would map the shared zero page, which
    reads from cache)."""
    return np.full((OUTPUTS, nbytes // FP32_BYTES // OUTPUTS), 0.5, dtype=np.float32)


def _array(nbytes: int) -> NDArray[np.float32]:
    return np.full(nbytes // FP32_BYTES, 0.5, dtype=np.float32)


def _ort_gemv(options: ort.SessionOptions, nbytes: int) -> Runner:
    weights = _matrix(nbytes)
    rows, columns = weights.shape
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)],
        "gemv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, columns])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, rows])],
        [numpy_helper.from_array(weights, "w")],
    )
    del weights
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    serialized = model.SerializeToString()
    del model, graph
    session = ort.InferenceSession(
        serialized, sess_options=options, providers=["CPUExecutionProvider"]
    )
    del serialized
    feed = {"x": np.ones((1, columns), dtype=np.float32)}
    return lambda: session.run(None, feed)


def _torch_gemv(_options: ort.SessionOptions, nbytes: int) -> Runner:
    weights = torch.from_numpy(_matrix(nbytes))
    vector = torch.ones((1, weights.shape[1]))

    def linear() -> torch.Tensor:
        with torch.inference_mode():
            return torch.nn.functional.linear(vector, weights)

    return linear


def _numpy_gemv(_options: ort.SessionOptions, nbytes: int) -> Runner:
    weights = _matrix(nbytes)
    vector = np.ones(weights.shape[1], dtype=np.float32)
    return lambda: weights @ vector


def _torch_sum(_options: ort.SessionOptions, nbytes: int) -> Runner:
    array = torch.from_numpy(_array(nbytes))
    return lambda: array.sum()


def _numpy_sum(_options: ort.SessionOptions, nbytes: int) -> Runner:
    halves = np.array_split(_array(nbytes), THREADS)
    pool = ThreadPoolExecutor(THREADS, thread_name_prefix="stream")
    return lambda: sum(pool.map(np.sum, halves))


GEMVS: dict[str, Factory] = {
    "onnxruntime Gemm GEMV (MLAS), weights an initializer": _ort_gemv,
    "torch linear GEMV": _torch_gemv,
    "numpy matmul GEMV (OpenBLAS)": _numpy_gemv,
}
READS: dict[str, Factory] = {
    "torch sum (read)": _torch_sum,
    f"numpy sum (read), {THREADS} Python threads": _numpy_sum,
}
METHODS: dict[str, Factory] = {**GEMVS, **READS}
