"""The one number formatter: a count with the SI prefix that suits it, and the exact count.

``si_count`` picks the prefix per value, so the mantissa lies in [1, 1000): 642,000 MACs read
"642 K", 614,310,432 read "614.31 M", 138,357,544 params "138.36 M". The mantissa is rounded to
two decimals, half away from zero, in integer arithmetic (no float ever rounds it), and trailing
zeros are dropped. static/js/format.js is the same algorithm in JavaScript, on BigInt, and a
browser test feeds both the same values. Wherever a page shows ``si_count``, the exact count
(``exact_count``) is beside it or on hover.
"""

from __future__ import annotations

PREFIXES = ("", "K", "M", "G", "T", "P", "E")
DECIMALS = 2
_HUNDREDTHS: int = 10**DECIMALS
_SCALES: tuple[int, ...] = tuple(1000**power for power in range(len(PREFIXES)))


def exact_count(value: int) -> str:
    """The exact count with thousands separators: 642,000."""
    return f"{value:,}"


def _mantissa_hundredths(magnitude: int, power: int) -> int:
    """``magnitude / 1000**power`` in hundredths, rounded half up (exact: integers only)."""
    scale = _SCALES[power]
    return (magnitude * _HUNDREDTHS * 2 + scale) // (2 * scale)


def si_count(value: int) -> str:
    """A count with the prefix that keeps its mantissa in [1, 1000): 642 K, 0 (not 0 K), -1.5 M."""
    sign, magnitude = ("-", -value) if value < 0 else ("", value)
    if magnitude < 1000:
        return f"{sign}{magnitude}"
    power = min((len(str(magnitude)) - 1) // 3, len(PREFIXES) - 1)
    hundredths = _mantissa_hundredths(magnitude, power)
    if hundredths >= 1000 * _HUNDREDTHS and power + 1 < len(PREFIXES):
        power += 1  # 999,999 rounds to 1000.00 K: that is 1 M
        hundredths = _mantissa_hundredths(magnitude, power)
    whole, fraction = divmod(hundredths, _HUNDREDTHS)
    decimals = f"{fraction:0{DECIMALS}d}".rstrip("0")
    number = f"{whole:,}" + (f".{decimals}" if decimals else "")
    return f"{sign}{number} {PREFIXES[power]}"


def signed_si_count(value: int) -> str:
    """A difference: +1.2 M, -642 K, or 0."""
    return f"+{si_count(value)}" if value > 0 else si_count(value)
