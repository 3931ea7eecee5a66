"""The ILSVRC timeline the lecture opens with (error by year, depth beside it), and its checks.

Entries that are nets of ours take their depth from the calculator; the others (pre-deep
entries, GoogLeNet, ResNet) carry theirs in the data file. Beside the yearly errors the lecture
states differences between entries ("three to four percent less") and a human's error; those are
checked against the entries' own figures and the published human estimate, each with its source.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache

from pydantic import Field

from app.core.calculator import builtin_table
from app.core.lecture import range_verdict, rounded_verdict
from app.core.table import Frozen, Verdict
from app.specs.models import NonNegativeInt, PositiveInt, Source, Strict
from app.specs.registry import DATA_DIR, TIMELINE_FILE


class SpokenError(Strict):
    ref: PositiveInt
    says: str
    value: float
    decimals: NonNegativeInt


class Entry(Strict):
    id: str | None = None
    year: PositiveInt
    entry: str
    top5_error: float
    net: str | None = None
    depth: PositiveInt | None = None
    lecture: SpokenError


class OtherEntry(Strict):
    """An entry that was not the year's best (a runner-up): not drawn, only compared with."""

    id: str
    year: PositiveInt
    entry: str
    top5_error: float
    source: Source


class Difference(Strict):
    """A gap the lecture states between two entries' errors, as a spoken range of points."""

    ref: PositiveInt
    says: str
    low: NonNegativeInt
    high: NonNegativeInt
    larger: str
    smaller: str
    why: str


class HumanError(Strict):
    """The lecture's human error beside the published estimate."""

    ref: PositiveInt
    says: str
    value: float
    decimals: NonNegativeInt
    top5_error: float
    who: str
    source: Source
    why: str


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
    others: list[OtherEntry] = Field(default_factory=list)
    differences: list[Difference] = Field(default_factory=list)
    human: HumanError | None = None


class TimelinePoint(Frozen):
    year: int
    entry: str
    top5_error: float
    depth: int | None
    net: str | None
    verdict: Verdict


class TimelineFigure(Frozen):
    """A figure about the competition that is no one entry's error: where, its verdict, and the
    source of the exact value."""

    where: str
    net: str | None
    verdict: Verdict
    source: Source


class Timeline(Frozen):
    title: str
    source: Source
    points: list[TimelinePoint]
    depth_verdicts: list[Verdict]
    figures: list[TimelineFigure]
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
        basis="checked",
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
                basis="checked",
            )
        )
    return verdicts


def _difference(
    gap: Difference, by_id: dict[str, Entry | OtherEntry], source: Source
) -> TimelineFigure:
    larger, smaller = by_id[gap.larger], by_id[gap.smaller]
    exact = Decimal(str(larger.top5_error)) - Decimal(str(smaller.top5_error))
    verdict = Verdict(
        ref=gap.ref,
        says=gap.says,
        quantity="top5_error_gap",
        stated=f"{gap.low} to {gap.high} points",
        exact=f"{exact} points",
        verdict=range_verdict(Decimal(gap.low), Decimal(gap.high), exact, 0),
        basis="checked",
        computation=f"{larger.top5_error} - {smaller.top5_error} = {exact}",
        why=gap.why,
    )
    where = f"ILSVRC {larger.year}: {larger.entry} vs ILSVRC {smaller.year}: {smaller.entry}"
    if larger.year == smaller.year:
        where = f"ILSVRC {larger.year}: {larger.entry} vs {smaller.entry}"
    net = next((e.net for e in (smaller, larger) if isinstance(e, Entry) and e.net), None)
    sources = [e.source for e in (larger, smaller) if isinstance(e, OtherEntry)]
    return TimelineFigure(where=where, net=net, verdict=verdict, source=next(iter(sources), source))


def _human(human: HumanError) -> TimelineFigure:
    spoken, exact = Decimal(str(human.value)), Decimal(str(human.top5_error))
    verdict = Verdict(
        ref=human.ref,
        says=human.says,
        quantity="top5_error",
        stated=f"{human.value:.{human.decimals}f} %",
        exact=f"{human.top5_error} % ({human.who})",
        verdict=rounded_verdict(spoken, exact, human.decimals),
        basis="checked",
        why=human.why,
    )
    return TimelineFigure(
        where="A human's top-5 error", net=None, verdict=verdict, source=human.source
    )


def _figures(data: TimelineFile) -> list[TimelineFigure]:
    by_id: dict[str, Entry | OtherEntry] = {e.id: e for e in data.entries if e.id}
    by_id.update({e.id: e for e in data.others})
    unknown = sorted({id_ for g in data.differences for id_ in (g.larger, g.smaller)} - set(by_id))
    if unknown:
        raise ValueError(f"{TIMELINE_FILE}: differences name unknown entries: {', '.join(unknown)}")
    figures = [_difference(gap, by_id, data.source) for gap in data.differences]
    return figures + ([_human(data.human)] if data.human else [])


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
        figures=_figures(data),
        context=data.context,
    )
