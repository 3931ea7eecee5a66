"""Memory: the server's RSS while clients upload to all 13 nets in turn, default cache budget.

The n-th request goes to net n mod 13, so sessions are loaded, used and evicted all along: the
model cache's budget (2 GiB by default) is what keeps the process bounded, and the target is
that RSS never passes budget + 400 MB. Two phases, each on a fresh server: one client (one net
loading at a time), then 8 clients (up to 8 nets loading at once).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import httpx

from app.repository.manifest import read_manifest
from app.specs import builtin_registry
from scripts.bench import images, loadgen
from scripts.bench.common import MIB, Context, build_models
from scripts.bench.concurrency import BUDGET_BYTES, RSS_HEADROOM
from scripts.bench.report import Section, target
from scripts.bench.server import RssSampler, Server, serve
from scripts.bench.stats import quantile

PHASES = ((1, 1), (8, 4))  # (clients, requests per net)
MAX_SECONDS = 240.0


@dataclass(frozen=True)
class Phase:
    clients: int
    idle: int
    samples: list[int]
    load: loadgen.Load
    end_rss: int
    cached: list[str]  # nets whose session the server holds at the end (from /readyz)
    cached_bytes: int

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)


def run(context: Context) -> Section:
    section = Section("memory", "Memory across all 13 nets")
    built = build_models(context.models_root)
    nets = builtin_registry().ids()
    photo = images.jpeg(images.VGA)
    requests = [
        loadgen.post_file(f"/api/predict/{net}", "image", "photo.jpg", "image/jpeg", photo)
        for net in nets
    ]
    phases = [
        _phase(context, requests, clients, 1 if context.quick else per_net)
        for clients, per_net in PHASES
    ]
    limit = BUDGET_BYTES + RSS_HEADROOM
    section.add(
        f"Uploads of a 640x480 JPEG spread evenly over the {len(nets)} nets (request n to net "
        f"n mod {len(nets)}; untrained weights), default model cache budget "
        f"({BUDGET_BYTES / MIB:.0f} MiB), each phase on a fresh server; RSS sampled every "
        f"50 ms. Limit: budget + 400 MB = {limit / MIB:.0f} MiB.",
        "",
    )
    section.table(
        (
            "clients",
            "uploads",
            "RSS idle MiB",
            "RSS p50 MiB",
            "RSS peak MiB",
            "answers by status",
            "errors",
            "latency p50 s",
            "p99 s",
            "took s",
            "RSS at the end MiB",
            "sessions cached at the end (model files)",
        ),
        [_row(phase) for phase in phases],
    )
    for phase in phases:
        section.targets.append(
            target(
                f"server RSS, {phase.clients} client(s) over all 13 nets",
                f"<= budget + 400 MB ({limit / MIB:.0f} MiB)",
                f"{phase.peak / MIB:.0f} MiB peak",
                phase.peak <= limit and bool(phase.load.ok),
            )
        )
    section.commands += [built.command, "python -m scripts.bench --only memory"]
    return section


def _phase(context: Context, requests: list[bytes], clients: int, per_net: int) -> Phase:
    with serve(context.models_root) as server, RssSampler(server) as rss:
        idle = server.rss()
        load = loadgen.run_load(
            server.port,
            requests,
            clients=clients,
            max_requests=per_net * len(requests),
            max_seconds=MAX_SECONDS,
        )
        cached = _cached_nets(server)
        end_rss = server.rss()
    size = sum(_model_bytes(context, net) for net in cached)
    return Phase(clients, idle, rss.samples, load, end_rss, cached, size)


def _cached_nets(server: Server) -> list[str]:
    models = httpx.get(f"{server.url}/readyz", timeout=30).json()["inference"]["models"]
    return [model["id"] for model in models if model["loaded"]]


def _model_bytes(context: Context, net: str) -> int:
    return read_manifest(context.models_root / net).model.bytes


def _row(phase: Phase) -> tuple[object, ...]:
    statuses = Counter(answer.status for answer in phase.load.answers)
    ok = [answer.seconds for answer in phase.load.ok]
    return (
        phase.clients,
        len(phase.load.answers),
        f"{phase.idle / MIB:.0f}",
        f"{quantile(phase.samples, 0.5) / MIB:.0f}" if phase.samples else "-",
        f"{phase.peak / MIB:.0f}",
        ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())),
        dict(phase.load.errors) or "none",
        f"{quantile(ok, 0.5):.2f}" if ok else "-",
        f"{quantile(ok, 0.99):.2f}" if ok else "-",
        f"{phase.load.elapsed:.0f}",
        f"{phase.end_rss / MIB:.0f}",
        f"{len(phase.cached)} ({phase.cached_bytes / MIB:.0f} MiB)",
    )
