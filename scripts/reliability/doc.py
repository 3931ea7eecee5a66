"""docs/reliability.md: what the server admits and how, then the figures of the last run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.reliability.report import Result, markdown

INTRO = (Path(__file__).parent / "intro.md").read_text()


@dataclass(frozen=True)
class Run:
    day: str
    machine: str
    build: str
    seconds: float
    quick: bool


def render(run: Run, results: Sequence[Result]) -> str:
    passed = sum(result.passed for result in results)
    kind = "a quick run (short loads)" if run.quick else "the full run"
    head = f"""## Figures of the last run

{run.day}, {run.machine}; {kind}, {run.seconds / 60:.0f} min, all on loopback.

```sh
{run.build}
make reliability   # python -m scripts.reliability --write-doc
```

{passed} of {len(results)} scenarios met every criterion.{lost(results)}

"""
    return INTRO + "\n" + head + markdown(results)


def lost(results: Sequence[Result]) -> str:
    """The sentence on what was lost, from the criteria that say so."""
    keys = {"burst", "isolation", "shutdown", "soak"}
    checked = [r for r in results if r.key in keys]
    if checked and all(r.passed for r in checked):
        return (
            " Nothing was lost: every request of the burst, the saturation, the soak and the "
            "shutdown got an answer, a 200 or a 503 that says when to come back."
        )
    return ""
