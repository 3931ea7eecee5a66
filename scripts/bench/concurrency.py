"""Concurrency: N closed-loop clients uploading to one net; images/s and latency percentiles.

The levels run in rounds, alternating their order (1 4 8 32, 32 8 4 1, ...), each load bounded
in requests and seconds. Throughput ratios pair levels within a round; latency percentiles pool
every answer of a level. The server's RSS is sampled all along.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from scripts.bench import images, loadgen
from scripts.bench.common import ALEXNET, MIB, Context, build_models
from scripts.bench.report import Section, target
from scripts.bench.server import RssSampler, Server, serve
from scripts.bench.stats import Spread, quantile, ratios, spread

LEVELS = (1, 4, 8, 32)
SPEEDUP_WANTED = 1.7  # images/s at 8 clients over 1 client
TAIL_WANTED = 3.0  # p99 at 8 clients over the p50 of 1 client
BUDGET_BYTES = 2 * 1024 * MIB  # Settings.model_cache_bytes' default
RSS_HEADROOM = 400 * 1000 * 1000  # "budget + 400 MB"


@dataclass
class Level:
    clients: int
    per_second: list[float] = field(default_factory=list)  # one per round
    latencies: list[float] = field(default_factory=list)  # seconds, every answer
    p50s: list[float] = field(default_factory=list)  # one per round
    p99s: list[float] = field(default_factory=list)
    refused: int = 0  # non-200 answers (503: queue full) and transport errors

    def record(self, load: loadgen.Load) -> None:
        ok = [answer.seconds for answer in load.ok]
        if not ok:
            statuses = Counter(answer.status for answer in load.answers)
            raise RuntimeError(f"{self.clients} clients: no answer was a 200: {statuses}")
        self.per_second.append(load.per_second())
        self.latencies += ok
        self.p50s.append(quantile(ok, 0.5))
        self.p99s.append(quantile(ok, 0.99))
        self.refused += len(load.answers) - len(ok) + sum(load.errors.values())


def run(context: Context) -> Section:
    section = Section("concurrency", "Concurrency and dynamic batching (AlexNet)")
    built = build_models(context.models_root, (ALEXNET,))
    photo = images.jpeg(images.VGA)
    request = loadgen.post_file(
        f"/api/predict/{ALEXNET}", "image", "photo.jpg", "image/jpeg", photo
    )
    levels = {clients: Level(clients) for clients in LEVELS}
    rounds, seconds_each = (1, 3.0) if context.quick else (3, 8.0)
    with serve(context.models_root) as server, RssSampler(server) as rss:
        warm_up(server, request)
        for index in range(rounds):
            order = LEVELS if index % 2 == 0 else LEVELS[::-1]
            for clients in order:
                levels[clients].record(_load(server, request, clients, seconds_each))
    _describe(section, levels, photo, seconds_each, rounds, rss.peak)
    _judge(section, levels, rss.peak)
    section.commands += [built.command, "python -m scripts.bench --only concurrency"]
    return section


def warm_up(server: Server, request: bytes) -> None:
    """Three predictions first: the model loads, and a failure stops the section here."""
    load = loadgen.run_load(server.port, [request], clients=1, max_requests=3, max_seconds=60)
    if len(load.ok) != 3:
        raise RuntimeError(f"warm-up predictions failed: {load.answers[:1]} {dict(load.errors)}")


def _load(server: Server, request: bytes, clients: int, seconds_each: float) -> loadgen.Load:
    return loadgen.run_load(
        server.port, [request], clients=clients, max_requests=5000, max_seconds=seconds_each
    )


def _describe(
    section: Section,
    levels: dict[int, Level],
    photo: bytes,
    seconds_each: float,
    rounds: int,
    peak_rss: int,
) -> None:
    section.add(
        f"Net: `{ALEXNET}` (untrained). Each client uploads a {images.describe(photo)} to "
        f"`POST /api/predict/{ALEXNET}` on its own keep-alive connection and sends the next as "
        f"soon as the answer is in. {rounds} rounds of {seconds_each:.0f} s per level (at most "
        "5000 requests), levels in alternating order; the asyncio load generator shares the 2 "
        "cores with the server.",
        "",
    )
    base = levels[1]
    rows = []
    for level in levels.values():
        speedup = ratios(level.per_second, base.per_second)
        lat = spread(level.latencies).scaled(1000)
        rows.append(
            (
                level.clients,
                spread(level.per_second).text(1),
                f"{speedup.median:.2f}x",
                f"{lat.median:.1f}",
                f"{quantile(level.latencies, 0.99) * 1000:.1f}",
                len(level.latencies),
                level.refused,
            )
        )
    section.table(
        (
            "clients",
            "images/s (IQR over rounds)",
            "vs 1 client",
            "p50 ms",
            "p99 ms",
            "answers",
            "refused or failed",
        ),
        rows,
    )
    section.add(
        f"Server RSS, peak over the whole section: {peak_rss / MIB:.0f} MiB.",
        "",
        "Note: N closed-loop clients keep N requests in the server, so their mean latency is "
        "N / throughput (Little's law). With 8 clients, p99 <= 3 x the one-client p50 therefore "
        f"needs 8 clients to get at least 8 / {TAIL_WANTED:.0f} = {8 / TAIL_WANTED:.2f}x the "
        "one-client throughput (one client's mean latency is about 1 / its throughput), more "
        f"than the {SPEEDUP_WANTED}x of the throughput target.",
        "",
    )


def _judge(section: Section, levels: dict[int, Level], peak_rss: int) -> None:
    speedup = ratios(levels[8].per_second, levels[1].per_second)
    tail: Spread = ratios(levels[8].p99s, levels[1].p50s)
    limit = BUDGET_BYTES + RSS_HEADROOM
    section.targets += [
        target(
            "images/s at 8 clients / at 1 client",
            f">= {SPEEDUP_WANTED}x",
            f"{speedup.median:.2f}x (IQR {speedup.q1:.2f}-{speedup.q3:.2f})",
            speedup.median >= SPEEDUP_WANTED,
        ),
        target(
            "p99 at 8 clients / p50 at 1 client",
            f"<= {TAIL_WANTED}x",
            f"{tail.median:.2f}x (IQR {tail.q1:.2f}-{tail.q3:.2f}; "
            f"{spread(levels[8].p99s).median * 1000:.0f} ms vs "
            f"{spread(levels[1].p50s).median * 1000:.0f} ms)",
            tail.median <= TAIL_WANTED,
        ),
        target(
            "server RSS during the AlexNet levels",
            f"<= budget + 400 MB ({limit / MIB:.0f} MiB)",
            f"{peak_rss / MIB:.0f} MiB peak",
            peak_rss <= limit,
        ),
    ]
