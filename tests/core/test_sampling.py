"""conv1's sampling grid: the lecture's ZFNet with the 55 units it states misses the last 4
columns and rows (1,800 pixels); on random layers the coverage agrees with a set of windows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.core.sampling import coverage, first_layer
from app.specs import builtin_registry


def test_the_lectures_zfnet_with_55_units_never_sees_1800_pixels() -> None:
    found = first_layer(builtin_registry().get("zfnet-lecture"))
    assert found is not None
    assert found.coverage.units == 56  # (227 - 7) / 4 + 1
    assert found.coverage.uncovered_columns == []
    assert found.stated_units == 55
    assert found.stated is not None
    assert found.stated.starts[-1] + 7 - 1 == 222  # the 55th window ends at pixel 222
    assert found.stated.uncovered_columns == [223, 224, 225, 226]
    assert found.stated.uncovered_pixels == 227**2 - 223**2 == 1800


def test_alexnet_and_zfnet_grids() -> None:
    alexnet = first_layer(builtin_registry().get("alexnet-lecture"))
    zfnet = first_layer(builtin_registry().get("zfnet-2013"))
    assert alexnet is not None
    assert zfnet is not None
    assert alexnet.stated is None  # the lecture's 55 is the arithmetic's
    assert alexnet.coverage.starts[:3] == [0, 4, 8]
    assert max(alexnet.coverage.counts) == 3  # ceil(11 / 4) windows at most
    assert zfnet.coverage.starts[:3] == [-1, 1, 3]
    assert max(zfnet.coverage.counts) == 4  # ceil(7 / 2)
    assert first_layer(builtin_registry().get("vgg16")) is not None


@given(
    side=st.integers(5, 120),
    kernel=st.integers(1, 11),
    stride=st.integers(1, 8),
    padding=st.integers(0, 3),
)
def test_coverage_agrees_with_a_set_of_windows(
    side: int, kernel: int, stride: int, padding: int
) -> None:
    if kernel > side + 2 * padding:
        return
    units = (side + 2 * padding - kernel) // stride + 1
    found = coverage(side, kernel, stride, padding, units)
    seen = {
        pixel
        for unit in range(units)
        for pixel in range(unit * stride - padding, unit * stride - padding + kernel)
        if 0 <= pixel < side
    }
    assert found.uncovered_columns == sorted(set(range(side)) - seen)
    assert found.uncovered_pixels == side**2 - len(seen) ** 2
    assert sum(found.counts) == sum(
        1
        for unit in range(units)
        for pixel in range(unit * stride - padding, unit * stride - padding + kernel)
        if 0 <= pixel < side
    )
    assert sum(found.histogram.values()) == side
