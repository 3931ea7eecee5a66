"""What the API and the pages read: summaries, lecture figures, comparisons, serialized tables.

Built from the registry and the calculator only, and cached: built-in nets never change while
the server runs, so each table is computed and serialized once.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

from app.core.across import across_figures
from app.core.calculator import analyze, builtin_table
from app.core.compare import Comparison, compare
from app.core.errors import parse_json
from app.core.limits import SpecLimits
from app.core.sampling import FirstLayer, first_layer
from app.core.stacks import StackCase, stack_cases
from app.core.table import Basis, Frozen, Table, Verdict
from app.core.timeline import timeline
from app.specs import Spec, UnknownSpecError, Volume, builtin_registry
from app.specs.models import Source
from app.web.byte_cache import ByteBoundedCache
from app.web.responses import Encoded
from app.web.weights import ServedWeights, file_name, served_weights

TIMELINE = "ILSVRC timeline"
ANALYZE_CACHE_SIZE = 128
Top5Kind = Literal["reported", "checkpoint", "variant", "none"]
CHECKPOINT_SOURCE = (
    "100 % less the top-5 accuracy of torchvision's published weights on the ImageNet "
    "validation set, one centre crop"
)


class Top5Error(Frozen):
    """A net's top-5 error only as what it is: the paper's figure for exactly this net
    ("reported"), 100 % less the top-5 accuracy of its published checkpoint ("checkpoint"),
    none of its own for a lecture net that was never trained ("variant": ``of`` names the net
    it simplifies, whose figure ``text`` quotes), or none published."""

    value: float | None  # this net's own figure, else None
    kind: Top5Kind
    source: str | None  # who measured it, and on what
    note: str | None
    of: str | None
    headline: str  # "16.4 %", "none of its own", "none published"
    detail: str | None  # what the headline needs beside it: the source, or whose figure
    text: str  # the one sentence a page shows: headline and detail together


class NetSummary(Frozen):
    id: str
    name: str
    family: str | None
    year: int | None
    input: Volume
    params: int
    macs: int
    depth: int
    simplifies: str | None
    top5_error: Top5Error
    published_weights: str | None  # the checkpoint's file name, where weights were published
    weights: ServedWeights | None = None  # what the model serves now (filled in per request)


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
    basis: Basis | None  # None for context: a fact beside the figure, nothing to check
    why: str | None
    source: str | None  # where an outside figure (a result, a human estimate) comes from
    source_url: str | None


class LectureSkip(Frozen):
    """A lecture net's layer whose output volume the lecture never states."""

    net_id: str
    where: str
    layer: str
    exact: str
    computation: str | None


def spec_id(spec: Spec) -> str:
    assert spec.id is not None  # the registry refuses specs without one
    return spec.id


def _own_top5(spec: Spec) -> Top5Error:
    if spec.top5_error is not None:
        reported = spec.top5_error
        return Top5Error(
            value=reported.value,
            kind="reported",
            source=reported.source,
            note=reported.note,
            of=None,
            headline=f"{reported.value} %",
            detail=reported.source,
            text=f"{reported.value} % ({reported.source})",
        )
    if spec.weights is not None:
        accuracy = Decimal(str(spec.weights.acc5))
        value = Decimal(100) - accuracy
        detail = (
            f"100 - {accuracy} % top-5 accuracy of torchvision's published weights "
            f"({file_name(spec.weights.url)}) on the ImageNet validation set, one centre crop"
        )
        return Top5Error(
            value=float(value),
            kind="checkpoint",
            source=CHECKPOINT_SOURCE,
            note=spec.weights.note,
            of=None,
            headline=f"{value} %",
            detail=detail,
            text=f"{value} % ({detail})",
        )
    return Top5Error(
        value=None,
        kind="none",
        source=None,
        note=None,
        of=None,
        headline="none published",
        detail=None,
        text="no published error",
    )


def top5_error(spec: Spec) -> Top5Error:
    """The net's own error, or for a lecture net the error of the net it simplifies, as such."""
    if spec.simplifies is None:
        return _own_top5(spec)
    base = builtin_registry().get(spec.simplifies)
    theirs = _own_top5(base)
    reached = f"which reached {theirs.text}" if theirs.value is not None else "which has none"
    detail = f"the lecture's simplification of {base.name}, {reached}"
    return Top5Error(
        value=None,
        kind="variant",
        source=theirs.source,
        note=None,
        of=spec.simplifies,
        headline="none of its own",
        detail=detail,
        text=f"no error of its own: {detail}",
    )


def summary(spec: Spec) -> NetSummary:
    totals = builtin_table(spec_id(spec)).totals
    return NetSummary(
        id=spec_id(spec),
        name=spec.name,
        family=spec.family,
        year=spec.year,
        input=spec.input,
        params=totals.params,
        macs=totals.macs,
        depth=totals.depth,
        simplifies=spec.simplifies,
        top5_error=top5_error(spec),
        published_weights=file_name(spec.weights.url) if spec.weights else None,
    )


@cache
def summaries() -> tuple[NetSummary, ...]:
    return tuple(summary(spec) for spec in builtin_registry())


@cache
def _summaries_by_id() -> dict[str, NetSummary]:
    return {item.id: item for item in summaries()}


def weights_now(models_dir: Path, net_id: str) -> ServedWeights:
    """What the net's built model serves now (read from its manifest when that changes)."""
    return served_weights(models_dir, builtin_registry().get(net_id))


def served_key(served: Mapping[str, ServedWeights]) -> tuple[str, ...]:
    """What the nets' models serve, as a cache key: a build that finishes changes it."""
    return tuple(
        f"{net_id}:{item.state}:{item.sha256 or ''}:{item.filters.sha256 if item.filters else ''}"
        for net_id, item in served.items()
    )


def weights_key(models_dir: Path, ids: Iterable[str]) -> tuple[str, ...]:
    return served_key({net_id: weights_now(models_dir, net_id) for net_id in ids})


def summaries_now(models_dir: Path) -> list[NetSummary]:
    """Every summary with the weights each net serves now."""
    return [
        item.model_copy(update={"weights": weights_now(models_dir, item.id)})
        for item in summaries()
    ]


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


# Sized by Settings.analyze_cache_bytes when an app is created (create_app).
ANALYSIS_CACHE: ByteBoundedCache[Table] = ByteBoundedCache(
    max_bytes=16 * 1024 * 1024, max_entries=ANALYZE_CACHE_SIZE
)


def analyze_cached(raw: object, limits: SpecLimits) -> Table:
    """A user's table; the editor re-sends unchanged specs, so recent ones are kept, charged
    the bytes of their key and their answer (ANALYSIS_CACHE is bounded in both)."""
    canonical = json.dumps(raw, sort_keys=True)
    key = (canonical, limits)
    table = ANALYSIS_CACHE.get(key)
    if table is None:
        table = analyze(json.loads(canonical), limits)
        size = len(canonical) + len(table.model_dump_json())
        ANALYSIS_CACHE.put(key, table, size)
    return table


def _entry(
    verdict: Verdict,
    where: str,
    net_id: str | None,
    layer: str | None = None,
    source: Source | None = None,
) -> LectureEntry:
    return LectureEntry(
        ref=verdict.ref,
        net_id=net_id,
        where=where,
        layer=layer,
        says=verdict.says,
        stated=verdict.stated,
        exact=verdict.exact,
        computation=verdict.computation,
        verdict=verdict.verdict,
        basis=verdict.basis,
        why=verdict.why,
        source=source.citation if source else None,
        source_url=source.url if source else None,
    )


def _net_entries(spec: Spec) -> list[LectureEntry]:
    table = builtin_table(spec_id(spec))
    entries = [_entry(item, spec.name, table.id) for item in table.lecture]
    for row in table.layers:
        entries += [_entry(item, spec.name, table.id, row.name) for item in row.lecture]
    return entries


def _timeline_entries() -> list[LectureEntry]:
    data = timeline()
    entries = [
        _entry(point.verdict, f"ILSVRC {point.year}: {point.entry}", point.net)
        for point in data.points
    ]
    entries += [_entry(item, TIMELINE, None) for item in data.depth_verdicts]
    entries += [
        _entry(figure.verdict, figure.where, figure.net, source=figure.source)
        for figure in data.figures
    ]
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
            basis=None,
            why=None,
            source=None,
            source_url=None,
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
    entries += [
        _entry(figure.verdict, figure.where, figure.net, figure.layer)
        for figure in across_figures()
    ]
    return tuple(sorted(entries, key=lambda entry: entry.ref))


@cache
def lecture_skips() -> tuple[LectureSkip, ...]:
    """Every lecture net's conv and pool layer whose output the lecture does not state."""
    return tuple(
        LectureSkip(
            net_id=spec_id(spec),
            where=spec.name,
            layer=item.name,
            exact=item.exact,
            computation=item.computation,
        )
        for spec in builtin_registry()
        for item in builtin_table(spec_id(spec)).lecture_unstated
    )


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


# The first layers set side by side on an AlexNet or ZFNet page: the lecture's AlexNet (11x11,
# stride 4), the published ZFNet (7x7, stride 2) and the lecture's ZFNet (7x7, stride 4).
FIRST_LAYER_NETS = ("alexnet-lecture", "zfnet-2013", "zfnet-lecture")
FIRST_LAYER_FAMILIES = frozenset({"AlexNet", "ZFNet"})


STACK_FAMILIES = frozenset({"VGG"})


@cache
def stacks_of(net_id: str) -> list[StackCase]:
    """A VGG net's stages of stacked 3x3 convs, each against one larger conv (its case)."""
    spec = builtin_registry().get(net_id)
    return stack_cases(spec) if spec.family in STACK_FAMILIES else []


@cache
def first_layers_for(net_id: str) -> list[FirstLayer]:
    """On an AlexNet or ZFNet page: this net's conv1 grid first, then the others compared."""
    registry = builtin_registry()
    if registry.get(net_id).family not in FIRST_LAYER_FAMILIES:
        return []
    ids = [net_id, *(other for other in FIRST_LAYER_NETS if other != net_id)]
    found = (first_layer(registry.get(other)) for other in ids)
    return [layer for layer in found if layer is not None]
