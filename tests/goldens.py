"""The golden tables (tests/golden/tables, checked against the calculator by
tests/core/test_golden_tables.py) as test data: API, CLI and page tests compare what they see
with these files, never with the core function that produced it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

GOLDEN_TABLES = Path(__file__).resolve().parent / "golden" / "tables"
# Every built-in net has one (tests/core/test_golden_tables.py checks that none is missing).
GOLDEN_IDS = sorted(path.stem for path in GOLDEN_TABLES.glob("*.json"))


@cache
def _golden_text(net_id: str) -> str:
    return (GOLDEN_TABLES / f"{net_id}.json").read_text(encoding="utf-8")


def golden_json_text(net_id: str) -> str:
    return _golden_text(net_id)


def golden_table(net_id: str) -> dict[str, Any]:
    """A fresh copy of the net's golden table JSON (the API's table answer)."""
    table: dict[str, Any] = json.loads(_golden_text(net_id))
    return table


def stage_sums(table: dict[str, Any], first: int, last: int) -> dict[str, Any]:
    """What a compare stage spanning layers ``first``..``last`` adds up to in the golden table."""
    rows = table["layers"][first : last + 1]
    return {
        "params": sum(row["params"] for row in rows),
        "macs": sum(row["macs"] for row in rows),
        "output": rows[-1]["output"],
    }


def golden_csv(net_id: str) -> str:
    return (GOLDEN_TABLES / f"{net_id}.csv").read_text(encoding="utf-8")


def golden_text(net_id: str) -> str:
    return (GOLDEN_TABLES / f"{net_id}.txt").read_text(encoding="utf-8")
