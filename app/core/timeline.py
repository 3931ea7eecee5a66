"""The ILSVRC timeline the lecture opens with (error by year, depth beside it), and its checks.

Entries that are nets of ours take their depth from the calculator; the others (pre-deep
entries, GoogLeNet, ResNet) carry theirs in the data file.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache

from pydantic import Field

from app.core.calculator import builtin_table
from app.core.lecture import rounded_verdict
from app.core.table import Frozen, Verdict
from app.specs.models import NonNegativeInt, PositiveInt, Source, Strict
from app.specs.registry import DATA_DIR, TIMELINE_FILE


class SpokenError(Strict):
    ref: PositiveInt
    says: str
    value: float
    decimals: NonNegativeInt


class Entry(Strict):
    year: PositiveInt
    entry: str
    top5_error: float
    net: str | None = None
    depth: PositiveInt | None = None
    lecture: SpokenError


class DepthClaim(Strict):
    ref: PositiveInt
    says: str
    values: list[PositiveInt]


class Context(Strict):
    ref: PositiveInt
    says: str
    fact: str


class TimelineFile(Strict):
    title: str
    source: Source
    context: list[Context] = Field(default_factory=list)
    depth_claim: DepthClaim
    entries: list[Entry]


class TimelinePoint(Frozen):
    year: int
    entry: str
    top5_error: float
    depth: int | None
    net: str | None
    verdict: Verdict


class Timeline(Frozen):
    title: str
    source: Source
    points: list[TimelinePoint]
    depth_verdicts: list[Verdict]
    context: list[Context]


def _depth(entry: Entry) -> int | None:
    return builtin_table(entry.net).totals.depth if entry.net else entry.depth


def _error_verdict(entry: Entry) -> Verdict:
    spoken = entry.lecture
    outcome = rounded_verdict(
        Decimal(str(spoken.value)), Decimal(str(entry.top5_error)), spoken.decimals
    )
    return Verdict(
        ref=spoken.ref,
        says=spoken.says,
        quantity="top5_error",
        stated=f"{spoken.value} %",
        exact=f"{entry.top5_error} %",
        verdict=outcome,
    )


def _depth_verdicts(claim: DepthClaim, points: list[TimelinePoint]) -> list[Verdict]:
    deep = [point for point in points if point.depth is not None]
    verdicts = []
    for stated, point in zip(claim.values, deep, strict=True):
        outcome = "exact" if stated == point.depth else "differs"
        verdicts.append(
            Verdict(
                ref=claim.ref,
                says=f"{claim.says}: {point.entry}",
                quantity="depth",
                stated=str(stated),
                exact=str(point.depth),
                verdict=outcome,
            )
        )
    return verdicts


@cache
def timeline() -> Timeline:
    data = TimelineFile.model_validate(
        json.loads((DATA_DIR / TIMELINE_FILE).read_text(encoding="utf-8"))
    )
    points = [
        TimelinePoint(
            year=entry.year,
            entry=entry.entry,
            top5_error=entry.top5_error,
            depth=_depth(entry),
            net=entry.net,
            verdict=_error_verdict(entry),
        )
        for entry in data.entries
    ]
    return Timeline(
        title=data.title,
        source=data.source,
        points=points,
        depth_verdicts=_depth_verdicts(data.depth_claim, points),
        context=data.context,
    )
