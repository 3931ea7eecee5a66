"""Golden files: every built-in net's table JSON, exactly as `convatlas table ID --format json`.

A change to the arithmetic or to a spec shows up here as a diff to review. To accept one on
purpose, run `CONVATLAS_UPDATE_GOLDEN=1 pytest tests/core/test_golden_tables.py`: it rewrites each
file that differs (and removes each stale one) and fails, naming them, so an update never passes
unseen. Review the diff, commit it, and run again: it passes once the files match.
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
REVIEW = "review the diff (git diff -- tests/golden/tables), commit it, and run the tests again"


def check_golden(path: Path, rendered: str, *, update: bool) -> None:
    """``rendered`` must equal the golden file. With ``update``, a file that differs (or is
    missing) is rewritten first and the check fails all the same, saying so."""
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if update and rendered != current:
        path.write_text(rendered, encoding="utf-8")
        pytest.fail(f"golden file rewritten: {path.name}; {REVIEW}", pytrace=False)
    assert current is not None, (
        f"no golden file {path.name}; create it with CONVATLAS_UPDATE_GOLDEN=1"
    )
    assert rendered == current, f"{path.name} differs; if on purpose, CONVATLAS_UPDATE_GOLDEN=1"


def check_no_stale(folder: Path, expected: set[str], *, update: bool) -> None:
    """Every file in ``folder`` is one of ``expected``; with ``update``, others are removed and
    the check fails, naming them."""
    stale = sorted(p.name for p in folder.iterdir() if p.name not in expected)
    if update and stale:
        for name in stale:
            (folder / name).unlink()
        pytest.fail(f"stale golden files removed: {', '.join(stale)}; {REVIEW}", pytrace=False)
    assert stale == [], "stale golden files; remove them with CONVATLAS_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("spec_id", builtin_registry().ids())
def test_table_matches_its_golden_file(spec_id: str, fmt: str) -> None:
    check_golden(GOLDEN / f"{spec_id}.{fmt}", FORMATS[fmt](builtin_table(spec_id)), update=UPDATE)


def test_there_is_no_stale_golden_file() -> None:
    expected = {f"{i}.{fmt}" for i in builtin_registry().ids() for fmt in FORMATS}
    check_no_stale(GOLDEN, expected, update=UPDATE)
    assert {p.name for p in GOLDEN.iterdir()} == expected


# The mechanism itself, on files of its own.

FAILED = pytest.fail.Exception


def test_an_update_that_changes_a_file_rewrites_it_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "net.json"
    path.write_text("old\n", encoding="utf-8")
    with pytest.raises(FAILED, match=r"golden file rewritten: net\.json; review the diff"):
        check_golden(path, "new\n", update=True)
    assert path.read_text(encoding="utf-8") == "new\n"


def test_an_update_that_creates_a_file_fails_too(tmp_path: Path) -> None:
    with pytest.raises(FAILED, match=r"golden file rewritten: net\.json"):
        check_golden(tmp_path / "net.json", "new\n", update=True)
    assert (tmp_path / "net.json").read_text(encoding="utf-8") == "new\n"


def test_an_update_with_nothing_to_change_passes_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "net.json"
    path.write_text("same\n", encoding="utf-8")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    check_golden(path, "same\n", update=True)
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_without_update_a_difference_fails_and_the_file_stays(tmp_path: Path) -> None:
    path = tmp_path / "net.json"
    path.write_text("old\n", encoding="utf-8")
    with pytest.raises(AssertionError, match=r"net\.json differs"):
        check_golden(path, "new\n", update=False)
    with pytest.raises(AssertionError, match=r"no golden file other\.json"):
        check_golden(tmp_path / "other.json", "new\n", update=False)
    assert path.read_text(encoding="utf-8") == "old\n"
    assert not (tmp_path / "other.json").exists()


def test_an_update_removes_a_stale_file_and_fails(tmp_path: Path) -> None:
    (tmp_path / "kept.json").write_text("{}", encoding="utf-8")
    (tmp_path / "gone.json").write_text("{}", encoding="utf-8")
    with pytest.raises(AssertionError, match="stale golden files"):
        check_no_stale(tmp_path, {"kept.json"}, update=False)
    with pytest.raises(FAILED, match=r"stale golden files removed: gone\.json"):
        check_no_stale(tmp_path, {"kept.json"}, update=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json"]
