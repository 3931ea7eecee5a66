"""Medians, spreads and interleaved side-by-side runs.

Every comparison in the report is a ratio of two things measured in the same run, alternately
(A B, B A, A B, ...), so that a machine that drifts (thermal, a noisy neighbour) drifts for both.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """A sample's median with its quartiles and extremes."""

    median: float
    q1: float
    q3: float
    low: float
    high: float
    count: int

    def scaled(self, factor: float) -> Spread:
        return Spread(
            self.median * factor,
            self.q1 * factor,
            self.q3 * factor,
            self.low * factor,
            self.high * factor,
            self.count,
        )

    def text(self, digits: int = 1, unit: str = "") -> str:
        """'12.3 ms (IQR 12.0-12.9, n=9)'."""
        suffix = f" {unit}" if unit else ""
        return (
            f"{self.median:.{digits}f}{suffix} "
            f"(IQR {self.q1:.{digits}f}-{self.q3:.{digits}f}, n={self.count})"
        )


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("no values to summarise")
    ordered = sorted(values)
    return Spread(
        median=statistics.median(ordered),
        q1=quantile(ordered, 0.25),
        q3=quantile(ordered, 0.75),
        low=ordered[0],
        high=ordered[-1],
        count=len(ordered),
    )


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default), 0 <= q <= 1."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * q
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    weight = position - lower
    return ordered[lower] * (1 - weight) + ordered[upper] * weight


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Spread:
    """The spread of the per-round ratios numerator / denominator (paired by round)."""
    pairs = zip(numerators, denominators, strict=True)
    return spread([top / bottom for top, bottom in pairs])


Timed = Callable[[], float]


@dataclass(frozen=True)
class Rounds:
    """How long an interleaved comparison may run: at least ``least`` rounds, then until
    ``most`` rounds or ``budget_s`` seconds, whichever comes first."""

    least: int
    most: int
    budget_s: float


def interleave(contenders: dict[str, Timed], rounds: Rounds) -> dict[str, list[float]]:
    """Run each contender once per round, alternating the order every round (A B, B A, ...).

    A contender returns the value it measured (usually seconds); the lists are paired by round.
    """
    names = list(contenders)
    results: dict[str, list[float]] = {name: [] for name in names}
    started = time.monotonic()
    for index in range(rounds.most):
        if index >= rounds.least and time.monotonic() - started > rounds.budget_s:
            break
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            results[name].append(contenders[name]())
    return results


def seconds(action: Callable[[], object]) -> float:
    """Wall-clock seconds one call of ``action`` takes."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
