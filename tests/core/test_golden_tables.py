"""Golden files: every built-in net's table JSON, exactly as `convatlas table ID --format json`.

A change to the arithmetic or to a spec shows up here as a diff to review. To accept one on
purpose, run `CONVATLAS_UPDATE_GOLDEN=1 pytest tests/core/test_golden_tables.py` and read the diff.
"""

import os
from pathlib import Path

import pytest

from app.core.calculator import builtin_table
from app.core.formatting import to_csv, to_json, to_text
from app.specs import builtin_registry

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "tables"
UPDATE = os.environ.get("CONVATLAS_UPDATE_GOLDEN") == "1"
FORMATS = {"json": to_json, "csv": to_csv, "txt": to_text}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("spec_id", builtin_registry().ids())
def test_table_matches_its_golden_file(spec_id: str, fmt: str) -> None:
    path = GOLDEN / f"{spec_id}.{fmt}"
    rendered = FORMATS[fmt](builtin_table(spec_id))
    if UPDATE:
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}; create it with CONVATLAS_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(encoding="utf-8")


def test_there_is_no_stale_golden_file() -> None:
    expected = {f"{i}.{fmt}" for i in builtin_registry().ids() for fmt in FORMATS}
    assert {p.name for p in GOLDEN.iterdir()} == expected
