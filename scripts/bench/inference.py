"""Inference: ConvAtlas's ONNX Runtime path vs torch eager on the same net, weights and threads.

"Ours" is the session InferenceService loads for a net (its own session options and provider),
run on a preprocessed batch, as the batching worker runs it. "Eager" is
``app.nets.builder.build(spec)`` (the module the ONNX file was exported from, same seed, so the
same untrained weights) in eval mode under ``torch.inference_mode()``, torch pinned to 2 threads.

Each round times, in alternating order: ours, eager, the reference GEMM (the best of peak.py's,
so "% of peak" is a ratio measured side by side too) and ours on the net's conv part alone (the
net's own model.onnx cut at the flatten with ``onnx.utils.extract_model``, same session options),
which splits the time between the conv layers and the fully connected ones.
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
from app.inference.manifest import Manifest
from app.inference.providers import CPU
from app.inference.service import InferenceService
from app.inference.sessions import session_options
from app.nets.builder import build
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
    seconds: dict[str, list[float]]  # per call, one per round: ours, eager, gemm, conv part
    gemm_flop: float
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

    def fc_seconds(self) -> float:
        """Whole net - conv part (per batch): the fully connected layers, about."""
        return spread(self.seconds["ours"]).median - spread(self.seconds["conv"]).median


def run(context: Context) -> Section:
    section = Section("inference", "Inference: ONNX Runtime path vs torch eager")
    built = build_models(context.models_root, INFERENCE_NETS)
    torch.set_num_threads(THREADS)
    settings = _settings(context)
    service = InferenceService(settings)
    before = measure_peak()
    cases = [
        _case(service, settings, net, batch, before.best, context.quick)
        for net in INFERENCE_NETS
        for batch in BATCHES
    ]
    after = measure_peak()
    _describe(section, cases, before, after, service)
    _judge(section, cases)
    section.commands += [built.command, "python -m scripts.bench --only inference"]
    return section


def _settings(context: Context) -> Settings:
    return Settings(models_dir=context.models_root, build_on_start=False, providers="cpu")


def _case(
    service: InferenceService,
    settings: Settings,
    net: str,
    batch: int,
    reference: GemmResult,
    quick: bool,
) -> Case:
    manifest = service.manifest(net)
    inputs = _inputs(manifest, batch)
    ours, ours_output = _ours(service, manifest, inputs)
    conv = _conv_part(settings, manifest, inputs)
    eager, eager_output = _eager(net, inputs)
    runners = {"ours": ours, "eager": eager, "gemm": gemm(reference.method, reference.size)}
    runners["conv"] = conv
    blocks = {name: _per_call(runner, _repeats(runner)) for name, runner in runners.items()}
    rounds = Rounds(2, 2, 0) if quick else Rounds(7, 21, 10.0)
    return Case(
        net=net,
        batch=batch,
        totals=builtin_table(net).totals,
        seconds=interleave(blocks, rounds),
        gemm_flop=gemm_flop(reference.size),
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
    section: Section, cases: list[Case], before: Peak, after: Peak, service: InferenceService
) -> None:
    reference = before.best
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
        "measured before the nets, table below).",
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
        "whose weights are read from memory once per batch.",
        "",
    )
    section.table(
        (
            "net",
            "batch",
            "conv part ms/image",
            "conv part GFLOP/s",
            "FC part ms/image",
            "FC weights MB",
            "FC weight stream GB/s",
        ),
        [_split_row(case) for case in cases],
    )
    section.add(f"Reference GEMMs, 2 threads, fp32. {openblas_state()}.", "")
    section.table(
        ("when", "GEMM", "n", "GFLOP/s median (IQR)"),
        [*peak_rows(before, "before the nets"), *peak_rows(after, "after the nets")],
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
    fc_s = case.fc_seconds()
    fc_bytes = case.totals.fc_params * FP32_BYTES
    stream = f"{fc_bytes / fc_s / 1e9:.1f}" if fc_s > 0 else "-"
    return (
        case.net,
        case.batch,
        f"{case.per_image('conv').median * 1000:.1f}",
        f"{case.conv_gflops():.1f}",
        f"{fc_s * 1000 / case.batch:.1f}",
        f"{fc_bytes / 1e6:.0f}",
        stream,
    )


def _judge(section: Section, cases: list[Case]) -> None:
    for case in cases:
        wanted, speedup = SPEEDUP_WANTED[case.batch], case.speedup()
        section.targets.append(
            target(
                f"{case.net} batch {case.batch}: ours vs torch eager",
                f">= {wanted}x",
                f"{speedup.median:.2f}x (IQR {speedup.q1:.2f}-{speedup.q3:.2f})",
                speedup.median >= wanted,
            )
        )
    for case in cases:
        wanted_share = PEAK_WANTED.get((case.net, case.batch))
        if wanted_share is not None:
            share = case.share_of_peak()
            section.targets.append(
                target(
                    f"{case.net} batch {case.batch}: % of measured peak",
                    f">= {wanted_share:.0%}",
                    f"{share.median:.0%} ({case.gflops().median:.0f} of "
                    f"{case.peak_gflops().median:.0f} GFLOP/s)",
                    share.median >= wanted_share,
                )
            )
