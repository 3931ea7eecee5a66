"""What the API and the pages read: summaries, lecture figures, comparisons, serialized tables.

Built from the registry and the calculator only, and cached: built-in nets never change while
the server runs, so each table is computed and serialized once.
"""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any, Literal

from app.core.calculator import analyze, builtin_table
from app.core.compare import Comparison, compare
from app.core.errors import parse_json
from app.core.limits import SpecLimits
from app.core.table import Frozen, LayerRow, Table, Verdict
from app.core.timeline import timeline
from app.specs import Spec, UnknownSpecError, Volume, builtin_registry
from app.web.responses import Encoded

TIMELINE = "ILSVRC timeline"
ANALYZE_CACHE_SIZE = 128


class NetSummary(Frozen):
    id: str
    name: str
    family: str | None
    year: int | None
    input: Volume
    params: int
    macs: int
    depth: int
    top5_error: float | None
    # "reported": the spec's ILSVRC figure; "checkpoint": 100 - acc5 of the published weights.
    top5_error_source: Literal["reported", "checkpoint"] | None
    top5_error_note: str | None
    pretrained: bool


class LectureEntry(Frozen):
    """One lecture figure, where it is checked, and the exact computation beside it."""

    ref: int
    net_id: str | None
    where: str
    layer: str | None
    says: str
    stated: str
    exact: str
    computation: str | None
    verdict: str
    why: str | None


def spec_id(spec: Spec) -> str:
    assert spec.id is not None  # the registry refuses specs without one
    return spec.id


def _top5(spec: Spec) -> tuple[float | None, Literal["reported", "checkpoint"] | None]:
    if spec.top5_error is not None:
        return spec.top5_error, "reported"
    if spec.weights is not None:
        return float(Decimal(100) - Decimal(str(spec.weights.acc5))), "checkpoint"
    return None, None


def summary(spec: Spec) -> NetSummary:
    totals = builtin_table(spec_id(spec)).totals
    top5, source = _top5(spec)
    return NetSummary(
        id=spec_id(spec),
        name=spec.name,
        family=spec.family,
        year=spec.year,
        input=spec.input,
        params=totals.params,
        macs=totals.macs,
        depth=totals.depth,
        top5_error=top5,
        top5_error_source=source,
        top5_error_note=spec.top5_error_note,
        pretrained=spec.weights is not None,
    )


@cache
def summaries() -> tuple[NetSummary, ...]:
    return tuple(summary(spec) for spec in builtin_registry())


@cache
def _summaries_by_id() -> dict[str, NetSummary]:
    return {item.id: item for item in summaries()}


def summary_of(net_id: str) -> NetSummary:
    """One net's summary; UnknownSpecError (a 404) names the known ids."""
    try:
        return _summaries_by_id()[net_id]
    except KeyError:
        raise UnknownSpecError(net_id, builtin_registry().ids()) from None


def families() -> dict[str, list[NetSummary]]:
    """Summaries grouped by family, families in the order they appeared (earliest year first)."""
    groups: dict[str, list[NetSummary]] = {}
    for item in summaries():
        groups.setdefault(item.family or "Other", []).append(item)

    def first_year(family: str) -> tuple[bool, int]:
        years = [item.year for item in groups[family] if item.year is not None]
        return not years, min(years, default=0)

    return {family: groups[family] for family in sorted(groups, key=first_year)}


@cache
def table_json(net_id: str) -> bytes:
    """A built-in table exactly as ``convatlas table ID --format json`` prints it, as bytes."""
    return builtin_table(net_id).model_dump_json().encode("utf-8")


@cache
def table_encoded(net_id: str) -> Encoded:
    """The table's JSON and its gzip, as the table API serves them."""
    return Encoded.of(table_json(net_id))


@cache
def comparison(a: str, b: str) -> Comparison:
    registry = builtin_registry()
    return compare(registry.get(a), builtin_table(a), registry.get(b), builtin_table(b))


@lru_cache(maxsize=ANALYZE_CACHE_SIZE)
def _analyze_canonical(canonical: str, limits: SpecLimits) -> Table:
    return analyze(json.loads(canonical), limits)


def analyze_cached(raw: object, limits: SpecLimits) -> Table:
    """A user's table; the editor re-sends unchanged specs, so recent ones are kept."""
    return _analyze_canonical(json.dumps(raw, sort_keys=True), limits)


def _computation(quantity: str, row: LayerRow) -> str | None:
    if quantity in {"input", "output", "activations"}:
        return row.formula.output
    if quantity in {"weights", "params"}:
        return row.formula.params
    return None


def _entry(
    verdict: Verdict, where: str, net_id: str | None, row: LayerRow | None = None
) -> LectureEntry:
    return LectureEntry(
        ref=verdict.ref,
        net_id=net_id,
        where=where,
        layer=row.name if row else None,
        says=verdict.says,
        stated=verdict.stated,
        exact=verdict.exact,
        computation=_computation(verdict.quantity, row) if row else None,
        verdict=verdict.verdict,
        why=verdict.why,
    )


def _net_entries(spec: Spec) -> list[LectureEntry]:
    table = builtin_table(spec_id(spec))
    entries = [_entry(item, spec.name, table.id) for item in table.lecture]
    for row in table.layers:
        entries += [_entry(item, spec.name, table.id, row) for item in row.lecture]
    return entries


def _timeline_entries() -> list[LectureEntry]:
    data = timeline()
    entries = [
        _entry(point.verdict, f"ILSVRC {point.year}: {point.entry}", point.net)
        for point in data.points
    ]
    entries += [_entry(item, TIMELINE, None) for item in data.depth_verdicts]
    entries += [
        LectureEntry(
            ref=fact.ref,
            net_id=None,
            where=TIMELINE,
            layer=None,
            says=fact.says,
            stated=fact.says,
            exact=fact.fact,
            computation=None,
            verdict="context",
            why=None,
        )
        for fact in data.context
    ]
    return entries


@cache
def lecture_entries() -> tuple[LectureEntry, ...]:
    """Every lecture figure the data carries, in the lecture's order (its reference number)."""
    entries = _timeline_entries()
    for spec in builtin_registry():
        entries += _net_entries(spec)
    return tuple(sorted(entries, key=lambda entry: entry.ref))


def editable_spec(spec: Spec) -> dict[str, Any]:
    """The part of a built-in spec a user edits: name, input and layers, defaults left out."""
    layers = [
        layer.model_dump(exclude={"notes", "lecture"}, exclude_defaults=True)
        for layer in spec.layers
    ]
    return {
        "name": spec.name,
        "input": spec.input.model_dump(),
        "layers": [{"kind": layer.pop("kind"), **layer} for layer in layers],
    }


def encode_spec(raw: object) -> str:
    """The ``spec`` query parameter of a /custom link: URL-safe base64 of compact JSON."""
    text = json.dumps(raw, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_spec(param: str, max_bytes: int) -> object:
    """The spec a /custom link carries; ValueError when it is not base64 of strict JSON or is
    longer than a POSTed spec may be."""
    if len(param) * 3 // 4 > max_bytes:
        raise ValueError(f"the link's spec is over {max_bytes:,} bytes")
    try:
        data = base64.urlsafe_b64decode(param + "=" * (-len(param) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("the link's spec is not valid URL-safe base64") from error
    try:
        return parse_json(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"the link's spec is not valid JSON: {error}") from error
