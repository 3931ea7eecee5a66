"""Lecture figures beside the exact computation, with a verdict: exact, rounded, or differs.

A figure "rounds" when it is the exact value rounded or cut to the precision it was spoken in
("four million" for 4,194,304 weights; "sixteen million" for 16,777,216).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from app.core.table import Verdict
from app.specs.models import LectureFigure, Volume

UNIT_SCALE = {None: 1, "million": 1_000_000}
UNIT_SUFFIX = {None: "", "million": " M"}


def volume_text(volume: Sequence[int]) -> str:
    return " x ".join(str(side) for side in volume)


def volume_list(volume: Volume) -> list[int]:
    return [volume.height, volume.width, volume.channels]


def _scaled_text(value: float, unit: str | None, decimals: int) -> str:
    return f"{value:,.{decimals}f}{UNIT_SUFFIX[unit]}"


def _count_verdict(figure: LectureFigure, exact: int) -> tuple[str, str, str]:
    if figure.factors is not None:
        product = 1
        for factor in figure.factors:
            product *= factor
        stated = f"{' x '.join(str(f) for f in figure.factors)} = {product:,}"
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


def verdict(figure: LectureFigure, exact: int | list[int]) -> Verdict:
    """Compare one figure with the exact value of the quantity it speaks of."""
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
        why=figure.why if outcome != "exact" else None,
    )
