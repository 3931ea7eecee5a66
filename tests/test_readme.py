"""The README stays true: its two set-up commands exist, CI runs the test one, every setting is
documented."""

import re
from pathlib import Path

from app.core.limits import SpecLimits
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def setup_commands() -> list[str]:
    block = README.split("## Set-up: two commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_exactly_two_setup_commands_run_and_test() -> None:
    assert setup_commands() == ["make run", "make test"]


def test_the_commands_are_makefile_targets() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("run", "test"):
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, flags=re.MULTILINE)


def test_every_setting_is_documented() -> None:
    names = [f"CONVATLAS_{name.upper()}" for name in Settings.model_fields if name != "spec_limits"]
    names += [f"CONVATLAS_SPEC_LIMITS__{name.upper()}" for name in SpecLimits.model_fields]
    assert [name for name in names if f"`{name}`" not in README] == []


def test_linked_docs_exist() -> None:
    for link in re.findall(r"\]\((docs/[^)]+)\)", README):
        assert (ROOT / link).exists(), link
