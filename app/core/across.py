"""The lecture's figures about two nets at once (data/lecture-across.json): a quantity of one
net's layer as a multiple of the same quantity of another's ("sixteen, thirty-two times"),
beside the exact ratio of the two computed tables.
"""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from functools import cache

from app.core.calculator import builtin_table
from app.core.table import Frozen, LayerRow, Verdict
from app.specs.models import PositiveInt, Strict
from app.specs.registry import ACROSS_FILE, DATA_DIR, builtin_registry


class LayerRef(Strict):
    net: str
    layer: str


class Comparison(Strict):
    ref: PositiveInt
    says: str
    quantity: str
    net: str
    layer: str
    against: LayerRef
    stated: list[PositiveInt]
    why: str


class AcrossFile(Strict):
    title: str
    comparisons: list[Comparison]


class AcrossFigure(Frozen):
    """One such figure: where it is checked (the first net and layer) and its verdict."""

    where: str
    net: str
    layer: str
    verdict: Verdict


def _row(net: str, layer: str) -> LayerRow:
    for row in builtin_table(net).layers:
        if row.name == layer:
            return row
    raise ValueError(f"{ACROSS_FILE}: {net} has no layer {layer!r}")


def ratio_text(ratio: Fraction) -> str:
    """The ratio as an exact decimal where it has one (24.5), else as a fraction (49/3)."""
    denominator = ratio.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        return f"{ratio.numerator}/{ratio.denominator}"
    return str(Decimal(ratio.numerator) / Decimal(ratio.denominator))


def _product_text(row: LayerRow) -> str:
    volume = row.input if row.kind == "flatten" else row.output
    return f"{volume.height}*{volume.width}*{volume.channels}"


def _figure(item: Comparison) -> AcrossFigure:
    if item.quantity != "activations":
        raise ValueError(f"{ACROSS_FILE}: figure {item.ref} compares {item.quantity!r}")
    mine, theirs = _row(item.net, item.layer), _row(item.against.net, item.against.layer)
    ratio = Fraction(mine.activations, theirs.activations)
    exact = ratio_text(ratio)
    outcome = "exact" if ratio in item.stated else "differs"
    registry = builtin_registry()
    verdict = Verdict(
        ref=item.ref,
        says=item.says,
        quantity=f"{item.quantity} ratio",
        stated=" or ".join(str(value) for value in item.stated) + " times",
        exact=f"{exact} times",
        verdict=outcome,
        basis="checked",
        computation=f"({_product_text(mine)}) / ({_product_text(theirs)}) = {exact}",
        why=item.why if outcome != "exact" else None,
    )
    where = f"{registry.get(item.net).name} vs {registry.get(item.against.net).name}"
    return AcrossFigure(where=where, net=item.net, layer=item.layer, verdict=verdict)


@cache
def across_figures() -> tuple[AcrossFigure, ...]:
    data = AcrossFile.model_validate(
        json.loads((DATA_DIR / ACROSS_FILE).read_text(encoding="utf-8"))
    )
    return tuple(_figure(item) for item in data.comparisons)
