"""Content negotiation on the Accept header (RFC 9110 12.5.1), for routes that answer JSON or CSV.

The most specific media range that matches an offer gives its quality (``text/csv`` before
``text/*`` before ``*/*``); the offer of highest quality wins, ties going to the first offered.
No Accept header accepts anything. A malformed quality counts as 1, as most servers read it.
"""

from __future__ import annotations

from collections.abc import Sequence

Range = tuple[str, str, float]  # type, subtype, quality


def quality_of(params: list[str]) -> float:
    """The ``q`` parameter among a range's or a coding's parameters (1 when absent)."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value.strip()), 0.0), 1.0)
            except ValueError:
                return 1.0
    return 1.0


def parse_accept(header: str) -> list[Range]:
    ranges = []
    for item in header.split(","):
        media_type, *params = item.split(";")
        kind, _, subtype = media_type.strip().lower().partition("/")
        if kind and subtype:
            ranges.append((kind, subtype, quality_of(params)))
    return ranges


def _specificity(offer: str, accepted: Range) -> int:
    """How specifically ``accepted`` names ``offer``: 2 exactly, 1 by type, 0 by */*, else -1."""
    kind, subtype = offer.split("/")
    if accepted[:2] == (kind, subtype):
        return 2
    if accepted[:2] == (kind, "*"):
        return 1
    return 0 if accepted[:2] == ("*", "*") else -1


def quality(offer: str, ranges: list[Range]) -> float:
    matching = [(_specificity(offer, r), r[2]) for r in ranges if _specificity(offer, r) >= 0]
    return max(matching)[1] if matching else 0.0


def preferred(header: str | None, offers: Sequence[str]) -> str | None:
    """The offer the client prefers, or None when it accepts none of them (406)."""
    if header is None or not header.strip():
        return offers[0]
    ranges = parse_accept(header)
    best = max(offers, key=lambda offer: quality(offer, ranges))  # max keeps the first of a tie
    return best if quality(best, ranges) > 0 else None
