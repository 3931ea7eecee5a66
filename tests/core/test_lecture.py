"""The lecture's figures beside the exact computation, with verdicts and reasons."""

import re
from pathlib import Path

import pytest

from app.core.across import across_figures
from app.core.calculator import analyze, builtin_table
from app.core.errors import SpecInvalid
from app.core.table import Verdict
from app.core.timeline import timeline
from app.specs import builtin_registry

# The decoded figure list, copied into the repository (tests/data/lecture/SOURCE.md) so CI, which
# has no ../shared, checks it too; where ../shared/lecture is present the copy must be current.
LECTURE_README = Path(__file__).resolve().parents[1] / "data" / "lecture" / "README.md"
SHARED_README = Path(__file__).resolve().parents[3] / "shared" / "lecture" / "README.md"


def all_verdicts() -> list[Verdict]:
    verdicts: list[Verdict] = []
    for spec_id in builtin_registry().ids():
        table = builtin_table(spec_id)
        verdicts += table.lecture
        for row in table.layers:
            verdicts += row.lecture
    points = timeline().points
    verdicts += [p.verdict for p in points] + timeline().depth_verdicts
    verdicts += [figure.verdict for figure in timeline().figures]
    return verdicts + [figure.verdict for figure in across_figures()]


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
    weights = [v.verdict for v in rows["conv2"].lecture if v.quantity == "weights"]
    assert weights == ["exact", "rounded"]  # "256 x 5 x 5 x 96", "six million"


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


def test_every_lecture_figure_is_checked_somewhere() -> None:
    refs = lecture_refs()
    assert refs == set(range(1, 34))  # the 33 decoded figures
    checked = {v.ref for v in all_verdicts()} | {c.ref for c in timeline().context}
    assert refs - checked == set()
    assert checked - refs == set(), "a verdict cites a figure the lecture list does not have"


def test_the_repositorys_copy_of_the_lecture_list_is_current() -> None:
    if SHARED_README.exists():  # beside a checkout in the workplace; CI has only the copy
        assert LECTURE_README.read_bytes() == SHARED_README.read_bytes()
    assert "| 33 |" in LECTURE_README.read_text(encoding="utf-8")


def by_ref(ref: int) -> list[Verdict]:
    return [v for v in all_verdicts() if v.ref == ref]


def test_figure_25_is_the_gap_between_the_2012_and_2013_winners() -> None:
    (gap,) = by_ref(25)
    assert (gap.stated, gap.exact, gap.verdict) == ("3 to 4 points", "4.68 points", "differs")
    assert gap.computation == "16.42 - 11.74 = 4.68"
    assert gap.why
    assert "chart" not in gap.why


def test_figure_30_is_alexnets_margin_over_the_2012_runner_up() -> None:
    (margin,) = by_ref(30)
    assert (margin.stated, margin.exact, margin.verdict) == (
        "8 to 9 points",
        "9.75 points",
        "differs",
    )
    assert margin.computation == "26.17 - 16.42 = 9.75"
    figure = next(f for f in timeline().figures if f.verdict.ref == 30)
    assert "ISI" in figure.where
    assert "ILSVRC 2012 results" in figure.source.citation


def test_figure_31_the_human_error_names_the_published_estimate() -> None:
    (human,) = by_ref(31)
    assert (human.stated, human.verdict) == ("35 %", "differs")
    assert human.exact.startswith("5.1 %")
    figure = next(f for f in timeline().figures if f.verdict.ref == 31)
    assert "Russakovsky" in figure.source.citation
    assert human.why


def test_figure_32_conv2_shrinks_by_four_not_two() -> None:
    (shrink,) = by_ref(32)
    assert (shrink.stated, shrink.exact, shrink.verdict) == ("25", "23", "differs")
    assert shrink.computation == "(27 - 5 + 2*0) / 1 + 1 = 23"
    assert shrink.why
    assert shrink.computation in shrink.why


def test_figure_33_vggs_fc1_input_grows_24_and_a_half_times() -> None:
    (growth,) = by_ref(33)
    assert (growth.stated, growth.exact, growth.verdict) == (
        "8 or 16 or 32 times",
        "24.5 times",
        "differs",
    )
    assert growth.computation == "(7*7*512) / (2*2*256) = 24.5"


def test_figure_22s_reason_says_pool1_still_gives_27() -> None:
    (conv1,) = by_ref(22)
    assert conv1.why
    assert "pool1 still gives 27 x 27 x 96" in conv1.why
    assert "⌊(56 - 3 + 2*0) / 2⌋ + 1 = 27" in conv1.why  # placeholders filled from the table


def test_figure_28_shows_where_122_m_and_16_m_come_from() -> None:
    conv, fc = sorted(by_ref(28), key=lambda v: v.quantity)
    totals = builtin_table("vgg16").totals
    assert fc.computation == "102,764,544 + 16,781,312 + 4,097,000 = 123,642,856"
    assert conv.computation
    assert conv.computation.endswith(f"= {totals.conv_params:,}")
    assert conv.computation.count("+") == 12  # the 13 convs
    assert fc.why
    assert "25,088*4,096 weights" in fc.why


def test_checked_and_defined_come_from_the_data() -> None:
    """A lecture net's settings are the lecture's: a figure about one is defined, not checked."""
    defined = sorted((v.ref, v.quantity) for v in all_verdicts() if v.basis == "defined")
    assert defined == [
        (10, "input"),
        (14, "kernel"),
        (14, "stride"),
        (16, "filters"),
        (16, "filters"),
        (23, "filters"),
        (23, "filters"),
        (23, "filters"),
    ]
    vgg16 = builtin_table("vgg16").lecture
    assert {v.quantity: v.basis for v in vgg16}["input"] == "checked"  # VGG follows its paper


def test_a_reason_quoting_what_the_table_lacks_is_refused() -> None:
    spec = {
        "name": "bad reason",
        "input": {"height": 8, "width": 8, "channels": 1},
        "lecture": [
            {"ref": 1, "says": "x", "quantity": "depth", "value": 2, "why": "see {conv9.output}"}
        ],
        "layers": [{"kind": "conv", "out_channels": 1, "kernel": 3}],
    }
    with pytest.raises(SpecInvalid, match="no layer named 'conv9'"):
        analyze(spec)
