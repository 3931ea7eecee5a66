"""The lecture's figures beside the exact computation, with verdicts and reasons."""

import re
from pathlib import Path

import pytest

from app.core.calculator import builtin_table
from app.core.table import Verdict
from app.core.timeline import timeline
from app.specs import builtin_registry

LECTURE_README = Path(__file__).resolve().parents[3] / "shared" / "lecture" / "README.md"


def all_verdicts() -> list[Verdict]:
    verdicts: list[Verdict] = []
    for spec_id in builtin_registry().ids():
        table = builtin_table(spec_id)
        verdicts += table.lecture
        for row in table.layers:
            verdicts += row.lecture
    points = timeline().points
    return verdicts + [p.verdict for p in points] + timeline().depth_verdicts


def test_zfnet_lecture_conv1_differs_and_says_why() -> None:
    conv1 = builtin_table("zfnet-lecture").layers[0]
    (figure,) = conv1.lecture
    assert (figure.stated, figure.exact, figure.verdict) == (
        "55 x 55 x 96",
        "56 x 56 x 96",
        "differs",
    )
    assert figure.why


def test_alexnet_lecture_total_is_not_27_55_million() -> None:
    total = next(
        v for v in builtin_table("alexnet-lecture").lecture if v.quantity == "total_params"
    )
    assert total.verdict == "differs"
    assert total.stated == "27.55 M"
    assert total.exact == "28,823,912 (28.82 M)"


def test_spoken_round_figures_are_rounded_not_wrong() -> None:
    rows = {row.name: row for row in builtin_table("alexnet-lecture").layers}
    assert [v.verdict for v in rows["fc7"].lecture] == ["rounded"]  # "sixteen million"
    assert [v.verdict for v in rows["conv2"].lecture] == ["exact", "rounded"]


def test_every_figure_that_differs_says_why() -> None:
    differing = [v for v in all_verdicts() if v.verdict == "differs"]
    assert differing, "the lecture has figures that do not follow from its own numbers"
    assert all(v.why for v in differing), [v.says for v in differing if not v.why]


def test_timeline_errors_and_depths() -> None:
    points = timeline().points
    assert [p.year for p in points] == [2010, 2011, 2012, 2013, 2014, 2014, 2015]
    assert (points[0].top5_error, points[-1].top5_error) == (28.19, 3.57)
    assert [p.depth for p in points] == [None, None, 8, 8, 19, 22, 152]
    assert {p.verdict.verdict for p in points} <= {"exact", "rounded"}


def lecture_refs() -> set[int]:
    text = LECTURE_README.read_text(encoding="utf-8")
    return {int(m) for m in re.findall(r"^\| (\d+) \|", text, flags=re.MULTILINE)}


@pytest.mark.skipif(
    not LECTURE_README.exists(), reason="needs ../shared/lecture beside the checkout"
)
def test_every_lecture_figure_is_checked_somewhere() -> None:
    checked = {v.ref for v in all_verdicts()} | {c.ref for c in timeline().context}
    assert lecture_refs() - checked == set()
