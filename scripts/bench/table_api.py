"""Table API: GET /api/architectures/{id}/table at 64 concurrent connections on loopback.

The load generator is Debian's wrk (one thread, C, so it takes as little as possible of the 2
cores the server also needs) when it is installed, with a Lua script that walks the 13 ids and
stops after a fixed count; the run is also bounded by its duration and by `timeout`. The asyncio
generator of this suite runs the same load as a cross-check (and is the only one without wrk).
Rounds alternate the two; each is bounded in requests and seconds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from app.specs import builtin_registry
from scripts.bench import loadgen
from scripts.bench.common import Context
from scripts.bench.report import Section, target
from scripts.bench.server import Server, serve
from scripts.bench.stats import quantile, spread

CONNECTIONS = 64
MAX_REQUESTS = 60_000
RPS_WANTED = 1500.0
P99_WANTED_MS = 20.0
GZIP = {"Accept-Encoding": "gzip"}


@dataclass
class Runs:
    """One load generator + variant: requests/s and p99 (ms) per round."""

    per_second: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    failed: int = 0


def run(context: Context) -> Section:
    section = Section("table", "Table API under load")
    ids = builtin_registry().ids()
    paths = [f"/api/architectures/{net}/table" for net in ids]
    wrk = shutil.which("wrk")
    duration = 2 if context.quick else 5
    rounds = 1 if context.quick else 3
    results: dict[str, Runs] = {}
    with serve(context.models_root) as server, tempfile.TemporaryDirectory() as scratch:
        _warm_up(server, paths)
        for _ in range(rounds):
            for gzip in (False, True):
                variant = "gzip" if gzip else "plain"
                if wrk is not None:
                    script = _lua(Path(scratch), paths, gzip)
                    _wrk(wrk, server, script, duration, _runs(results, f"wrk {variant}"))
                _asyncio(server, paths, gzip, duration, _runs(results, f"asyncio {variant}"))
    _describe(section, results, len(ids), duration, rounds)
    _judge(section, results, wrk is not None)
    section.commands.append("python -m scripts.bench --only table")
    if wrk is not None:
        section.commands.append(
            f"timeout {duration + 10} wrk -t1 -c{CONNECTIONS} -d{duration}s --latency "
            "-s walk-13-tables.lua http://127.0.0.1:PORT"
        )
    return section


def _runs(results: dict[str, Runs], name: str) -> Runs:
    return results.setdefault(name, Runs())


def _warm_up(server: Server, paths: list[str]) -> None:
    requests = [loadgen.get(path) for path in paths]
    loadgen.run_load(server.port, requests, clients=4, max_requests=200, max_seconds=10)


def _lua(folder: Path, paths: list[str], gzip: bool) -> Path:
    listed = ", ".join(f'"{path}"' for path in paths)
    header = 'wrk.headers["Accept-Encoding"] = "gzip"\n' if gzip else ""
    script = folder / f"walk-{'gzip' if gzip else 'plain'}.lua"
    script.write_text(
        f"{header}local paths = {{{listed}}}\n"
        "local sent, answered = 0, 0\n"
        "request = function()\n"
        "  sent = sent + 1\n"
        "  return wrk.format('GET', paths[(sent % #paths) + 1])\n"
        "end\n"
        "response = function(status, headers, body)\n"
        "  answered = answered + 1\n"
        f"  if answered >= {MAX_REQUESTS} then wrk.thread:stop() end\n"
        "end\n"
    )
    return script


def _wrk(wrk: str, server: Server, script: Path, duration: int, runs: Runs) -> None:
    command = ["timeout", str(duration + 10), wrk, "-t1", f"-c{CONNECTIONS}"]
    command += [f"-d{duration}s", "--latency", "-s", str(script), server.url]
    out = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    if rps is None or p50 is None or p99 is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    runs.per_second.append(float(rps.group(1)))
    runs.p50_ms.append(_ms(p50))
    runs.p99_ms.append(_ms(p99))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:.*", out)
    runs.failed += int(errors.group(1)) if errors else 0
    if socket_errors is not None:
        runs.failed += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(0)))


def _ms(match: re.Match[str]) -> float:
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def _asyncio(server: Server, paths: list[str], gzip: bool, duration: int, runs: Runs) -> None:
    requests = [loadgen.get(path, GZIP if gzip else None) for path in paths]
    load = loadgen.run_load(
        server.port,
        requests,
        clients=CONNECTIONS,
        max_requests=MAX_REQUESTS,
        max_seconds=duration,
    )
    ok = [answer.seconds * 1000 for answer in load.ok]
    runs.per_second.append(load.per_second())
    runs.p50_ms.append(quantile(ok, 0.5))
    runs.p99_ms.append(quantile(ok, 0.99))
    runs.failed += len(load.answers) - len(ok) + sum(load.errors.values())


def _describe(
    section: Section, results: dict[str, Runs], nets: int, duration: int, rounds: int
) -> None:
    section.add(
        f"{CONNECTIONS} keep-alive connections, each request for the next of the {nets} nets' "
        f"tables, {rounds} rounds of {duration} s per generator and variant (at most "
        f"{MAX_REQUESTS} requests each), in turn. `plain` sends no Accept-Encoding (wrk's "
        "default); `gzip` sends `Accept-Encoding: gzip` as a browser does, and the server "
        "compresses each answer.",
        "",
    )
    rows = [
        (
            name,
            spread(runs.per_second).text(0),
            spread(runs.p50_ms).text(1),
            spread(runs.p99_ms).text(1),
            runs.failed,
        )
        for name, runs in results.items()
    ]
    section.table(
        ("generator, variant", "requests/s", "p50 ms", "p99 ms", "non-200 or errors"), rows
    )
    section.add(
        f"Note: with {CONNECTIONS} connections always busy, the mean latency is {CONNECTIONS} / "
        "throughput (Little's law), so p99 <= 20 ms needs at least "
        f"{CONNECTIONS / (P99_WANTED_MS / 1000):.0f} requests/s, whatever else the server does.",
        "",
    )


def _judge(section: Section, results: dict[str, Runs], with_wrk: bool) -> None:
    generator = "wrk" if with_wrk else "asyncio"
    for variant in ("plain", "gzip"):
        runs = results[f"{generator} {variant}"]
        rps, p99 = spread(runs.per_second).median, spread(runs.p99_ms).median
        section.targets.append(
            target(
                f"table at {CONNECTIONS} connections, {variant} ({generator})",
                f">= {RPS_WANTED:.0f} requests/s, p99 <= {P99_WANTED_MS:.0f} ms",
                f"{rps:.0f} requests/s, p99 {p99:.1f} ms",
                rps >= RPS_WANTED and p99 <= P99_WANTED_MS and runs.failed == 0,
            )
        )
