"""The one CSV writer: every CSV the app produces is written here, with formula cells defused.

A spreadsheet reads a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return before one) as a formula, and so would run ``=HYPERLINK(...)`` from a layer named so in a
shared ``?spec=`` link. OWASP's rule (CSV Injection) is applied to every text cell: one that
starts with any of those, or with their full-width forms (which some spreadsheets fold to the
ASCII ones), gets a leading apostrophe, which spreadsheets show as text and do not display.
Numbers stay numbers: a negative count is written as the integer it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

FORMULA_STARTS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
# RFC 4180: a field holding any of these is quoted. Python 3.11's csv module quotes a carriage
# return only when it is part of the line terminator, so a name holding one would split its row.
QUOTED_IF = frozenset(',"\r\n')


def safe_cell(value: object) -> object:
    """Text a spreadsheet would read as a formula, prefixed with an apostrophe; else as is."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def _field(value: object) -> str:
    text = "" if value is None else str(safe_cell(value))
    if QUOTED_IF.isdisjoint(text):
        return text
    return '"' + text.replace('"', '""') + '"'


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A CSV document (RFC 4180 quoting, one ``\n`` per row) with every text cell made safe and
    None written as an empty cell."""
    lines = [",".join(_field(cell) for cell in row) for row in [header, *rows]]
    return "".join(line + "\n" for line in lines)
