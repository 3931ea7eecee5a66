"""Pass criteria, as printed while the scripts run and as docs/reliability.md reports them."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from scripts.reliability.http import Reply


@dataclass(frozen=True)
class Criterion:
    what: str
    target: str
    measured: str
    passed: bool


@dataclass
class Result:
    key: str
    title: str
    setup: str
    criteria: list[Criterion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    table: list[str] = field(default_factory=list)  # markdown lines, shown after the notes

    def check(self, what: str, target: str, measured: str, passed: bool) -> None:
        criterion = Criterion(what, target, measured, passed)
        self.criteria.append(criterion)
        verdict = "PASS" if passed else "FAIL"
        print(f"  [{verdict}] {what}: {measured} (target: {target})", flush=True)

    @property
    def passed(self) -> bool:
        return all(criterion.passed for criterion in self.criteria)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(replies: Sequence[Reply]) -> str:
    seconds = [reply.seconds for reply in replies]
    if not seconds:
        return "no answers"
    return (
        f"p50 {ms(statistics.median(seconds))}, p99 {ms(quantile(seconds, 0.99))}, "
        f"max {ms(max(seconds))} over {len(seconds)}"
    )


def statuses(replies: Sequence[Reply]) -> str:
    counts = Counter(
        f"{reply.status} {reply.code()}" if reply.code() else str(reply.status or reply.error)
        for reply in replies
    )
    return ", ".join(f"{name}: {count}" for name, count in sorted(counts.items()))


def problems(replies: Sequence[Reply]) -> str:
    """How many replies gave each precise image refusal (``slow_encoding``, ...)."""
    counts = Counter(reply.problem() or "none" for reply in replies)
    return ", ".join(f"{name}: {count}" for name, count in sorted(counts.items()))


def mib(value: float) -> str:
    return f"{value / (1024 * 1024):.0f} MiB"


def markdown(results: Sequence[Result]) -> str:
    lines: list[str] = []
    for result in results:
        lines += [f"### {result.title}", "", result.setup, ""]
        lines += ["| criterion | target | measured | |", "|---|---|---|---|"]
        for c in result.criteria:
            verdict = "pass" if c.passed else "FAIL"
            lines.append(f"| {c.what} | {c.target} | {c.measured} | {verdict} |")
        lines.append("")
        lines += [f"- {note}" for note in result.notes]
        if result.notes:
            lines.append("")
        if result.table:
            lines += [*result.table, ""]
    return "\n".join(lines)
