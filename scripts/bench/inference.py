"""Inference: ConvAtlas's ONNX Runtime path vs torch eager on the same net, weights and threads.

"Ours" is the session InferenceService loads for a net (its own session options and provider),
run on a preprocessed batch, as the batching worker runs it. "Eager" is
``app.nets.builder.build(spec)`` (the module the ONNX file was exported from, same seed, so the
same untrained weights) in eval mode under ``torch.inference_mode()``, torch pinned to 2 threads.

Each round times, in alternating order: ours, eager, the reference GEMM (the best of peak.py's,
so "% of peak" is a ratio measured side by side too), ours on the net's conv part alone (the
net's own model.onnx cut at the flatten with ``onnx.utils.extract_model``, same session options),
which splits the time between the conv layers and the fully connected ones, and the reference
memory stream (the best of stream.py's, over as many bytes as the net's FC weights).

From the last two references comes a ceiling, the fastest ours could be on this machine: the
conv FLOPs at the GEMM's rate, then the FC layers at the larger of their FLOPs at that rate and
their weights at the stream's rate (at batch 1 the weights, read once per batch, set it). Hence
the largest speed-up over eager and the largest % of peak this machine allows, per round, so a
target that the ceiling itself misses says so beside its verdict.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import torch
from numpy.typing import NDArray

from app.core.calculator import builtin_table
from app.core.table import Totals
from app.inference.providers import CPU
from app.inference.service import InferenceService
from app.inference.sessions import session_options
from app.nets.builder import build
from app.repository.manifest import Manifest
from app.settings import Settings
from app.specs import builtin_registry
from scripts.bench.common import INFERENCE_NETS, Context, build_models, service_session
from scripts.bench.convpart import conv_part_model
from scripts.bench.peak import (
    THREADS,
    GemmResult,
    Peak,
    gemm,
    gemm_flop,
    measure_peak,
    openblas_state,
    peak_rows,
)
from scripts.bench.report import Section, target
from scripts.bench.stats import Rounds, Spread, interleave, ratios, spread
from scripts.bench.stream import Bandwidth, measure_stream, operand_bytes, stream_rows, streamer

BATCHES = (1, 8)
BLOCK_S = 0.25  # each timed block repeats a run until it lasts about this long
SPEEDUP_WANTED = {1: 1.6, 8: 1.5}
PEAK_WANTED = {("vgg16", 8): 0.85, ("alexnet-lecture", 1): 0.5, ("alexnet-torchvision", 1): 0.5}
FP32_BYTES = 4

Runner = Callable[[], object]


@dataclass(frozen=True)
class Case:
    net: str
    batch: int
    totals: Totals
    seconds: dict[str, list[float]]  # per call, one per round: ours, eager, gemm, conv, stream
    gemm_flop: float
    stream_bytes: int  # what one call of the stream reads: about the FC weights' bytes
    max_abs_diff: float

    def per_image(self, name: str) -> Spread:
        return spread([t / self.batch for t in self.seconds[name]])

    def speedup(self) -> Spread:
        return ratios(self.seconds["eager"], self.seconds["ours"])

    def gflops(self) -> Spread:
        flop = 2 * self.totals.macs * self.batch
        return spread([flop / t / 1e9 for t in self.seconds["ours"]])

    def peak_gflops(self) -> Spread:
        return spread([self.gemm_flop / t / 1e9 for t in self.seconds["gemm"]])

    def share_of_peak(self) -> Spread:
        """Per round: our GFLOP/s over the GEMM's GFLOP/s of the same round."""
        flop = 2 * self.totals.macs * self.batch
        pairs = zip(self.seconds["ours"], self.seconds["gemm"], strict=True)
        return spread([(flop / ours) / (self.gemm_flop / ref) for ours, ref in pairs])

    def conv_gflops(self) -> float:
        return 2 * self.totals.conv_macs * self.batch / spread(self.seconds["conv"]).median / 1e9

    def conv_share_of_peak(self) -> float:
        return self.conv_gflops() / self.peak_gflops().median

    def fc_seconds(self) -> float:
        """Whole net - conv part (per batch): the fully connected layers, about."""
        return spread(self.seconds["ours"]).median - spread(self.seconds["conv"]).median

    def fc_bytes(self) -> int:
        return self.totals.fc_params * FP32_BYTES

    def fc_gbps(self) -> float | None:
        """The FC part's weight bytes over its time: None when the split shows no FC time."""
        fc_s = self.fc_seconds()
        return self.fc_bytes() / fc_s / 1e9 if fc_s > 0 else None

    def stream_gbps(self) -> Spread:
        return spread([self.stream_bytes / t / 1e9 for t in self.seconds["stream"]])

    def fc_share_of_stream(self) -> float | None:
        fc = self.fc_gbps()
        return None if fc is None else fc / self.stream_gbps().median

    def ceilings(self) -> list[float]:
        """Per round, the fastest a batch could run (seconds): the conv FLOPs at the GEMM's
        FLOP/s, then the larger of the FC FLOPs at that rate and the FC weights at the stream's
        bytes/s, both rates from the same round."""
        conv_flop = 2 * self.totals.conv_macs * self.batch
        fc_flop = 2 * self.totals.fc_macs * self.batch
        out = []
        for gemm_s, stream_s in zip(self.seconds["gemm"], self.seconds["stream"], strict=True):
            flops, bandwidth = self.gemm_flop / gemm_s, self.stream_bytes / stream_s
            out.append(conv_flop / flops + max(fc_flop / flops, self.fc_bytes() / bandwidth))
        return out

    def ceiling_per_image(self) -> Spread:
        return spread([t / self.batch for t in self.ceilings()])

    def ceiling_speedup(self) -> Spread:
        """The largest speed-up over eager this machine allows: eager / ceiling per round."""
        return ratios(self.seconds["eager"], self.ceilings())

    def ceiling_share_of_peak(self) -> Spread:
        """The largest % of peak this machine allows: GFLOP/s at the ceiling / the GEMM's."""
        flop = 2 * self.totals.macs * self.batch
        pairs = zip(self.ceilings(), self.seconds["gemm"], strict=True)
        return spread([(flop / ceiling) / (self.gemm_flop / ref) for ceiling, ref in pairs])

    def share_of_ceiling(self) -> Spread:
        """How close ours comes: ceiling / ours per round (100% = as fast as possible)."""
        return ratios(self.ceilings(), self.seconds["ours"])

    def why(self) -> str:
        """What holds the ceiling down, for a verdict's measured text."""
        fc = self.fc_share_of_stream()
        streams = "" if fc is None else f", FC weights stream at {fc:.0%} of measured bandwidth"
        return f"conv part at {self.conv_share_of_peak():.0%} of peak{streams}"


def run(context: Context) -> Section:
    section = Section("inference", "Inference: ONNX Runtime path vs torch eager")
    built = build_models(context.models_root, INFERENCE_NETS)
    torch.set_num_threads(THREADS)
    settings = _settings(context)
    service = InferenceService(settings)
    options = session_options(settings)
    before, stream_before = measure_peak(), measure_stream(options)
    cases = []
    for net in INFERENCE_NETS:
        # The stream over as many bytes as the net's FC weights, made once for both batches.
        fc_bytes = builtin_table(net).totals.fc_params * FP32_BYTES
        method = stream_before.best.method
        reference = References(
            before.best, streamer(method, options, fc_bytes), operand_bytes(method, fc_bytes)
        )
        cases += [
            _case(service, settings, net, batch, reference, context.quick) for batch in BATCHES
        ]
    after, stream_after = measure_peak(), measure_stream(options)
    _describe(section, cases, (before, after), (stream_before, stream_after), service)
    _judge(section, cases)
    section.commands += [built.command, "python -m scripts.bench --only inference"]
    return section


@dataclass(frozen=True)
class References:
    """What a case times beside the net: the peak's GEMM and the stream over its FC bytes."""

    gemm: GemmResult
    stream: Runner
    stream_bytes: int


def _settings(context: Context) -> Settings:
    return Settings(models_dir=context.models_root, build_on_start=False, providers="cpu")


def _case(
    service: InferenceService,
    settings: Settings,
    net: str,
    batch: int,
    reference: References,
    quick: bool,
) -> Case:
    manifest = service.manifest(net)
    inputs = _inputs(manifest, batch)
    ours, ours_output = _ours(service, manifest, inputs)
    conv = _conv_part(settings, manifest, inputs)
    eager, eager_output = _eager(net, inputs)
    runners = {
        "ours": ours,
        "eager": eager,
        "gemm": gemm(reference.gemm.method, reference.gemm.size),
        "conv": conv,
        "stream": reference.stream,
    }
    blocks = {name: _per_call(runner, _repeats(runner)) for name, runner in runners.items()}
    rounds = Rounds(2, 2, 0) if quick else Rounds(7, 21, 10.0)
    return Case(
        net=net,
        batch=batch,
        totals=builtin_table(net).totals,
        seconds=interleave(blocks, rounds),
        gemm_flop=gemm_flop(reference.gemm.size),
        stream_bytes=reference.stream_bytes,
        max_abs_diff=float(np.max(np.abs(ours_output - eager_output))),
    )


def _inputs(manifest: Manifest, batch: int) -> NDArray[np.float32]:
    shape = (batch, manifest.input.channels, manifest.input.height, manifest.input.width)
    return np.random.default_rng(batch).standard_normal(shape, dtype=np.float32)


def _ours(
    service: InferenceService, manifest: Manifest, inputs: NDArray[np.float32]
) -> tuple[Runner, NDArray[np.float32]]:
    """A run of the service's own session for the net, on a whole batch."""
    session = service_session(service, manifest, "model")
    names, feed = [manifest.output.name], {manifest.input.name: inputs}
    output: NDArray[np.float32] = session.run(names, feed)[0]
    return (lambda: session.run(names, feed)), output


def _conv_part(settings: Settings, manifest: Manifest, inputs: NDArray[np.float32]) -> Runner:
    """The net's model.onnx up to the flatten, opened with the service's session options."""
    model = settings.models_dir / manifest.id / manifest.model.path
    path = conv_part_model(model, manifest.model.sha256, manifest.input.name)
    options = session_options(settings)
    session = ort.InferenceSession(str(path), sess_options=options, providers=[CPU])
    name = session.get_outputs()[0].name
    feed = {manifest.input.name: inputs}
    return lambda: session.run([name], feed)


def _eager(net: str, inputs: NDArray[np.float32]) -> tuple[Runner, NDArray[np.float32]]:
    module = build(builtin_registry().get(net)).eval()
    tensor = torch.from_numpy(inputs)

    def forward() -> torch.Tensor:
        with torch.inference_mode():
            result: torch.Tensor = module(tensor)
            return result

    return forward, forward().numpy()


def _repeats(runner: Runner) -> int:
    """How many calls make a block of about BLOCK_S (measured after a warm-up call)."""
    runner()
    started = time.perf_counter()
    runner()
    once = time.perf_counter() - started
    return max(1, math.ceil(BLOCK_S / max(once, 1e-6)))


def _per_call(runner: Runner, repeats: int) -> Callable[[], float]:
    def block() -> float:
        started = time.perf_counter()
        for _ in range(repeats):
            runner()
        return (time.perf_counter() - started) / repeats

    return block


def _describe(
    section: Section,
    cases: list[Case],
    peaks: tuple[Peak, Peak],
    streams: tuple[Bandwidth, Bandwidth],
    service: InferenceService,
) -> None:
    reference, stream = peaks[0].best, streams[0].best
    section.add(
        "Untrained (seeded) weights: the same seed-0 weights on both sides (speed needs no "
        "trained weights). Ours: the session `InferenceService` loads "
        f"(provider {service.provider().provider}, the service's session options), fed a "
        "preprocessed NCHW float32 batch. Eager: `build(spec).eval()` under "
        f"`torch.inference_mode()`, `torch.set_num_threads({THREADS})`. Each figure is the "
        f"median over rounds of a timed block (about {BLOCK_S} s of back-to-back runs), the "
        "rounds alternating the order; speed-up = eager / ours per round. GFLOP/s = 2 x MACs "
        "(the calculator's count, conv + linear). % of peak = ours GFLOP/s / the reference "
        f"GEMM's GFLOP/s in the same round (reference: {reference.method}, "
        f"{reference.size}x{reference.size} fp32, {THREADS} threads, the best of the GEMMs "
        "measured before the nets, tables below).",
        "",
    )
    section.table(
        (
            "net",
            "batch",
            "ours ms/image",
            "eager ms/image",
            "speed-up (eager/ours)",
            "ours GFLOP/s",
            "peak GFLOP/s (same rounds)",
            "% of peak",
            "max abs diff",
        ),
        [_row(case) for case in cases],
    )
    section.add(
        "Where the time goes (ours): the conv part alone (model.onnx cut at the flatten, timed "
        "in the same rounds) and the rest (whole - conv part), the fully connected layers, "
        "whose weights are read from memory once per batch. Stream: the reference memory "
        f"stream ({stream.method}, the best of those measured before the nets, tables below) "
        "over as many bytes as the net's FC weights, timed in the same rounds, so that the "
        "caches help it as much as they can help the net.",
        "",
    )
    section.table(
        (
            "net",
            "batch",
            "conv part ms/image",
            "conv part GFLOP/s",
            "conv part % of peak",
            "FC part ms/image",
            "FC weights MB",
            "FC weight stream GB/s",
            "stream GB/s (same bytes, same rounds)",
            "FC % of stream",
        ),
        [_split_row(case) for case in cases],
    )
    section.add(
        "Ceiling: the fastest ours could possibly be on this machine, per round from the "
        "same round's references: every conv FLOP at the reference GEMM's rate (nothing for "
        "im2col, pooling or activations), then the FC layers at the larger of their FLOPs at "
        "that rate and their weight bytes at the stream's rate. It assumes only that the FC "
        "weights are read from memory once per batch after the conv part (as both ONNX Runtime "
        "and torch do), not while it computes. Largest possible speed-up = eager / ceiling; "
        "largest possible % of peak = total FLOPs / ceiling / the GEMM's FLOP/s; a target above "
        "them cannot be met in fp32 on this machine, whatever the runtime.",
        "",
    )
    section.table(
        (
            "net",
            "batch",
            "ceiling ms/image",
            "ours ms/image",
            "ours at % of the ceiling's speed",
            "speed-up (eager/ours)",
            "largest possible speed-up (eager/ceiling)",
            "% of peak",
            "largest possible % of peak",
        ),
        [_ceiling_row(case) for case in cases],
    )
    section.add(f"Reference GEMMs, {THREADS} threads, fp32. {openblas_state()}.", "")
    section.table(
        ("when", "GEMM", "n", "GFLOP/s median (IQR)"),
        [*peak_rows(peaks[0], "before the nets"), *peak_rows(peaks[1], "after the nets")],
    )
    section.add(
        f"Reference memory streams, {THREADS} threads, fp32: the weight-streaming rate this "
        "machine showed, as GEMVs (1 x K by K x N, N = 4096: each weight read once, as the FC "
        "layers at batch 1 read theirs; ONNX Runtime's with the service's session options) and "
        "as plain reads (a sum), each a median over single calls. GB/s = bytes read / time "
        "(1 GB = 1e9 bytes, 1 MiB = 2^20).",
        "",
    )
    section.table(
        ("when", "stream", "MiB", "GB/s median (IQR)"),
        [*stream_rows(streams[0], "before the nets"), *stream_rows(streams[1], "after the nets")],
    )


def _row(case: Case) -> tuple[object, ...]:
    speedup, share = case.speedup(), case.share_of_peak()
    return (
        case.net,
        case.batch,
        case.per_image("ours").scaled(1000).text(1),
        case.per_image("eager").scaled(1000).text(1),
        f"{speedup.median:.2f}x ({speedup.q1:.2f}-{speedup.q3:.2f})",
        f"{case.gflops().median:.1f}",
        f"{case.peak_gflops().median:.1f}",
        f"{share.median:.0%} ({share.q1:.0%}-{share.q3:.0%})",
        f"{case.max_abs_diff:.1e}",
    )


def _split_row(case: Case) -> tuple[object, ...]:
    fc_s, fc_gbps, fc_share = case.fc_seconds(), case.fc_gbps(), case.fc_share_of_stream()
    stream = case.stream_gbps()
    return (
        case.net,
        case.batch,
        f"{case.per_image('conv').median * 1000:.1f}",
        f"{case.conv_gflops():.1f}",
        f"{case.conv_share_of_peak():.0%}",
        f"{fc_s * 1000 / case.batch:.1f}",
        f"{case.fc_bytes() / 1e6:.0f}",
        "-" if fc_gbps is None else f"{fc_gbps:.1f}",
        f"{stream.median:.1f} ({stream.q1:.1f}-{stream.q3:.1f})",
        "-" if fc_share is None else f"{fc_share:.0%}",
    )


def _ceiling_row(case: Case) -> tuple[object, ...]:
    speedup, share = case.speedup(), case.share_of_peak()
    ceiling, reached = case.ceiling_speedup(), case.share_of_ceiling()
    ceiling_share = case.ceiling_share_of_peak()
    return (
        case.net,
        case.batch,
        f"{case.ceiling_per_image().median * 1000:.1f}",
        f"{case.per_image('ours').median * 1000:.1f}",
        f"{reached.median:.0%} ({reached.q1:.0%}-{reached.q3:.0%})",
        f"{speedup.median:.2f}x",
        f"{ceiling.median:.2f}x ({ceiling.q1:.2f}-{ceiling.q3:.2f})",
        f"{share.median:.0%}",
        f"{ceiling_share.median:.0%} ({ceiling_share.q1:.0%}-{ceiling_share.q3:.0%})",
    )


def _judge(section: Section, cases: list[Case]) -> None:
    for case in cases:
        wanted, speedup = SPEEDUP_WANTED[case.batch], case.speedup()
        measured = f"{speedup.median:.2f}x (IQR {speedup.q1:.2f}-{speedup.q3:.2f})"
        measured += _ceiling_note(case.ceiling_speedup().median, wanted, speedup.median, case)
        section.targets.append(
            target(
                f"{case.net} batch {case.batch}: ours vs torch eager",
                f">= {wanted}x",
                measured,
                speedup.median >= wanted,
            )
        )
    for case in cases:
        wanted_share = PEAK_WANTED.get((case.net, case.batch))
        if wanted_share is not None:
            share = case.share_of_peak()
            measured = (
                f"{share.median:.0%} ({case.gflops().median:.0f} of "
                f"{case.peak_gflops().median:.0f} GFLOP/s)"
            )
            ceiling_share = case.ceiling_share_of_peak().median
            measured += _ceiling_note(ceiling_share, wanted_share, share.median, case, "{:.0%}")
            section.targets.append(
                target(
                    f"{case.net} batch {case.batch}: % of measured peak",
                    f">= {wanted_share:.0%}",
                    measured,
                    share.median >= wanted_share,
                )
            )


def _ceiling_note(
    ceiling: float, wanted: float, measured: float, case: Case, form: str = "{:.2f}x"
) -> str:
    """Beside a verdict whose target is above the ceiling: the ceiling and what holds it down.
    A figure above its own ceiling means the references were slowed in those rounds (another
    process on the cores): said as such rather than explained."""
    if ceiling >= wanted:
        return ""
    if measured > ceiling:
        return (
            f" (ceiling on this machine {form.format(ceiling)}, below the figure measured: "
            "the references were slowed in these rounds)"
        )
    return f" (ceiling on this machine {form.format(ceiling)}: {case.why()})"
