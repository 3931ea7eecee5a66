"""Upload to top-5: the whole POST /api/predict/{id} over HTTP, split into its parts.

Each round sends the 640x480 JPEG, the 12 MP JPEG, and runs pure inference (the service's
session on a preprocessed batch of one, in this process, while the server idles), in alternating
order. The server's answer carries its own timings (decode, preprocess, queue, inference);
the rest is the wall time the client saw less the server's total: HTTP, multipart, JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app.inference.service import InferenceService
from app.settings import Settings
from scripts.bench import images, loadgen
from scripts.bench.common import ALEXNET, Context, build_models, service_session
from scripts.bench.report import Section, target
from scripts.bench.server import Server, serve
from scripts.bench.stats import Rounds, interleave, ratios, seconds, spread

SERVER_PARTS = ("decode", "preprocess", "queue", "inference")
PARTS = (*SERVER_PARTS, "server other", "HTTP and client")
OVERHEAD_WANTED = 2.0


def _no_parts() -> dict[str, list[float]]:
    return {part: [] for part in PARTS}


@dataclass
class Upload:
    label: str
    data: bytes
    parts: dict[str, list[float]] = field(default_factory=_no_parts)  # ms, one per round


def run(context: Context) -> Section:
    section = Section("upload", "Upload to top-5 (AlexNet)")
    built = build_models(context.models_root, (ALEXNET,))
    uploads = [
        Upload("640x480", images.jpeg(images.VGA)),
        Upload("4032x3024", images.jpeg(images.TWELVE_MP)),
    ]
    pure = _pure_inference(context)
    with serve(context.models_root) as server:
        for upload in uploads:
            _send(server, upload)  # warm-up: the server loads the model on the first one
        contenders: dict[str, Callable[[], float]] = {
            upload.label: _timed_upload(server, upload) for upload in uploads
        }
        contenders["pure inference"] = lambda: seconds(pure)
        rounds = Rounds(3, 3, 0) if context.quick else Rounds(9, 31, 25.0)
        walls = interleave(contenders, rounds)
    _describe(section, uploads, walls)
    big = ratios(walls["4032x3024"], walls["pure inference"])
    section.targets.append(
        target(
            "12 MP JPEG: upload-to-top-5 / pure inference (AlexNet)",
            f"<= {OVERHEAD_WANTED}x",
            f"{big.median:.2f}x (IQR {big.q1:.2f}-{big.q3:.2f})",
            big.median <= OVERHEAD_WANTED,
        )
    )
    section.commands += [built.command, "python -m scripts.bench --only upload"]
    return section


def _pure_inference(context: Context) -> Callable[[], object]:
    settings = Settings(models_dir=context.models_root, build_on_start=False, providers="cpu")
    service = InferenceService(settings)
    manifest = service.manifest(ALEXNET)
    session = service_session(service, manifest, "model")
    shape = (1, manifest.input.channels, manifest.input.height, manifest.input.width)
    feed = {manifest.input.name: np.zeros(shape, dtype=np.float32)}
    names = [manifest.output.name]
    session.run(names, feed)
    return lambda: session.run(names, feed)


def _send(server: Server, upload: Upload) -> tuple[float, dict[str, float]]:
    """One upload: the client's wall seconds and the server's timings (ms)."""
    request = loadgen.post_file(
        f"/api/predict/{ALEXNET}", "image", "photo.jpg", "image/jpeg", upload.data
    )
    load = loadgen.run_load(
        server.port, [request], clients=1, max_requests=1, max_seconds=60, keep_bodies=True
    )
    if not load.ok:
        problem = load.answers[0].body[:300] if load.answers else dict(load.errors)
        raise RuntimeError(f"upload of {upload.label} failed: {problem!r}")
    answer = load.ok[0]
    timings: dict[str, float] = json.loads(answer.body)["timings_ms"]
    return answer.seconds, timings


def _timed_upload(server: Server, upload: Upload) -> Callable[[], float]:
    def once() -> float:
        wall, timings = _send(server, upload)
        for part in SERVER_PARTS:
            upload.parts[part].append(timings.get(part, 0.0))
        accounted = sum(timings.get(part, 0.0) for part in SERVER_PARTS)
        upload.parts["server other"].append(timings["total"] - accounted)
        upload.parts["HTTP and client"].append(wall * 1000 - timings["total"])
        return wall

    return once


def _describe(section: Section, uploads: list[Upload], walls: dict[str, list[float]]) -> None:
    pure = spread(walls["pure inference"]).scaled(1000)
    section.add(
        f"Net: `{ALEXNET}` (untrained weights). One client, one request at a time, a fresh "
        "loopback connection each, multipart field `image`. Images: "
        + "; ".join(f"{u.label}: {images.describe(u.data)}" for u in uploads)
        + f". Pure inference (session run, batch 1, no HTTP): {pure.text(1, 'ms')}.",
        "",
    )
    rows = []
    for upload in uploads:
        wall = spread(walls[upload.label]).scaled(1000)
        ratio = ratios(walls[upload.label], walls["pure inference"])
        parts = [spread(upload.parts[part]).text(1) for part in PARTS]
        rows.append(
            (
                upload.label,
                wall.text(1),
                *parts,
                f"{ratio.median:.2f}x ({ratio.q1:.2f}-{ratio.q3:.2f})",
            )
        )
    section.table(
        ("image", "upload to top-5 ms", *(f"{p} ms" for p in PARTS), "/ pure inference"),
        rows,
    )
    section.add(
        "decode, preprocess, queue and inference are the server's own timings (`timings_ms` of "
        "the answer); server other = its total less those (top-5, handing over between "
        "threads); HTTP and client = the wall time the client saw less the server's total "
        "(reading the multipart body, routing, JSON, the socket, the client).",
        "",
    )
