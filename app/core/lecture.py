"""Lecture figures beside the exact computation, with a verdict: exact, rounded, or differs.

A figure "rounds" when it is the exact value rounded or cut to the precision it was spoken in
("four million" for 4,194,304 weights; "sixteen million" for 16,777,216). Each verdict also says
whether the figure was *checked* or only *defined*: a lecture net (one that ``simplifies`` a
published net) takes its settings from the lecture, so a figure about a setting agrees by
construction. A figure's reason may quote computed values through placeholders (``{pool1.output}``,
``{totals.fc_params}``), filled in from the table, so no number is typed twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from app.core.table import Basis, LayerRow, Totals, Verdict
from app.specs.models import LectureFigure, Volume

UNIT_SCALE = {None: 1, "million": 1_000_000}
UNIT_SUFFIX = {None: "", "million": " M"}
# The quantities that are settings a spec declares rather than results the calculator computes.
SETTING_QUANTITIES = frozenset({"input", "filters", "kernel", "stride", "conv_kernel"})
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\.([a-z_]+)\}")


def volume_text(volume: Sequence[int]) -> str:
    return " x ".join(str(side) for side in volume)


def volume_list(volume: Volume) -> list[int]:
    return [volume.height, volume.width, volume.channels]


def basis(quantity: str, settings_from_lecture: bool) -> Basis:
    """defined when the spec copies the figure from the lecture (a setting of a lecture net)."""
    return "defined" if settings_from_lecture and quantity in SETTING_QUANTITIES else "checked"


def _scaled_text(value: float, unit: str | None, decimals: int) -> str:
    return f"{value:,.{decimals}f}{UNIT_SUFFIX[unit]}"


def _count_verdict(figure: LectureFigure, exact: int) -> tuple[str, str, str]:
    if figure.factors is not None:
        product = 1
        for factor in figure.factors:
            product *= factor
        stated = f"{'*'.join(str(f) for f in figure.factors)} = {product:,}"
        return stated, f"{exact:,}", "exact" if product == exact else "differs"
    assert isinstance(figure.value, int | float)
    scale = UNIT_SCALE[figure.unit]
    stated = _scaled_text(figure.value, figure.unit, figure.decimals)
    if figure.unit is None and isinstance(figure.value, int):
        return stated, f"{exact:,}", "exact" if figure.value == exact else "differs"
    scaled = Decimal(exact) / scale
    exact_text = f"{exact:,} ({_scaled_text(float(scaled), figure.unit, max(2, figure.decimals))})"
    return stated, exact_text, rounded_verdict(Decimal(str(figure.value)), scaled, figure.decimals)


def rounded_verdict(stated: Decimal, exact: Decimal, decimals: int) -> str:
    """exact, rounded (rounded or cut to the spoken precision), or differs."""
    if stated == exact:
        return "exact"
    step = Decimal(1).scaleb(-decimals)
    return "rounded" if abs(stated - exact) < step else "differs"


def range_verdict(low: Decimal, high: Decimal, exact: Decimal, decimals: int) -> str:
    """A spoken range ("three to four") agrees, at the precision it was spoken in, when the exact
    value rounds into it: rounded; otherwise it differs."""
    half = Decimal(1).scaleb(-decimals) / 2
    return "rounded" if low - half <= exact < high + half else "differs"


def verdict(
    figure: LectureFigure,
    exact: int | list[int],
    basis: Basis,
    computation: str | None = None,
    fill: Callable[[str], str] = str,
) -> Verdict:
    """Compare one figure with the exact value of the quantity it speaks of; ``fill`` resolves
    the placeholders of its reason."""
    if isinstance(exact, list):
        stated_list = figure.value if isinstance(figure.value, list) else []
        stated, exact_text = volume_text(stated_list), volume_text(exact)
        outcome = "exact" if stated_list == exact else "differs"
    else:
        stated, exact_text, outcome = _count_verdict(figure, exact)
    return Verdict(
        ref=figure.ref,
        says=figure.says,
        quantity=figure.quantity,
        stated=stated,
        exact=exact_text,
        verdict=outcome,
        basis=basis,
        computation=computation,
        why=fill(figure.why) if figure.why and outcome != "exact" else None,
    )


def _row_facts(row: LayerRow) -> dict[str, str | None]:
    return {
        "input": volume_text(volume_list(row.input)),
        "output": volume_text(volume_list(row.output)),
        "params": f"{row.params:,}",
        "weights": f"{row.weights:,}",
        "biases": f"{row.biases:,}",
        "macs": f"{row.macs:,}",
        "activations": f"{row.activations:,}",
        "output_formula": row.formula.output,
        "params_formula": row.formula.params,
        "macs_formula": row.formula.macs,
    }


class UnknownPlaceholder(ValueError):
    """A reason quotes a layer or a field the table does not have."""


def filler(rows: Sequence[LayerRow], totals: Totals) -> Callable[[str], str]:
    """Resolves ``{layer.field}`` and ``{totals.field}`` in a reason from the computed table."""
    by_name: Mapping[str, LayerRow] = {row.name: row for row in rows}
    total_facts = {key: f"{value:,}" for key, value in totals.model_dump().items()}

    def fact(match: re.Match[str]) -> str:
        owner, field = match.groups()
        if owner == "totals":
            found = total_facts.get(field)
        elif owner in by_name:
            found = _row_facts(by_name[owner]).get(field)
        else:
            raise UnknownPlaceholder(f"{match.group(0)}: there is no layer named {owner!r}")
        if found is None:
            raise UnknownPlaceholder(f"{match.group(0)}: {owner} has no {field}")
        return found

    return lambda text: PLACEHOLDER.sub(fact, text)
