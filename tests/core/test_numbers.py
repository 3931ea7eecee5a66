"""The one number formatter, app/core/numbers.py (tests/e2e/test_format_js.py: the JS one)."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.numbers import PREFIXES, exact_count, si_count, signed_si_count

# (value, as shown): the examples, the edges of each prefix and of the rounding.
EXAMPLES = [
    (0, "0"),
    (7, "7"),
    (999, "999"),
    (1_000, "1 K"),
    (1_024, "1.02 K"),
    (4_096, "4.1 K"),
    (642_000, "642 K"),  # a LeNet-sized net's MACs (the custom page said "0.00 G")
    (999_994, "999.99 K"),
    (999_995, "1 M"),  # 1000.00 K is 1 M
    (28_823_912, "28.82 M"),
    (138_357_544, "138.36 M"),  # VGG-16's params
    (614_310_432, "614.31 M"),  # the lecture's AlexNet MACs
    (15_470_264_320, "15.47 G"),
    (1_005, "1.01 K"),  # half up, in integers: 1.005 is not rounded through a float
    (-642_000, "-642 K"),
    (10**21, "1,000 E"),  # past the last prefix the mantissa grows
]


@pytest.mark.parametrize(("value", "shown"), EXAMPLES)
def test_si_count_picks_the_prefix_per_value(value: int, shown: str) -> None:
    assert si_count(value) == shown


def test_exact_and_signed_forms() -> None:
    assert exact_count(642_000) == "642,000"
    assert exact_count(-1_234) == "-1,234"
    assert (signed_si_count(1_500_000), signed_si_count(-1_500_000)) == ("+1.5 M", "-1.5 M")
    assert signed_si_count(0) == "0"


def reference(value: int) -> str:
    """The rule in words, through Decimal: the largest prefix that leaves a mantissa >= 1 after
    rounding half up to two decimals, trailing zeros dropped."""
    magnitude = abs(value)
    if magnitude < 1000:
        return str(value)
    power = 0
    for candidate in range(len(PREFIXES) - 1, 0, -1):
        mantissa = (Decimal(magnitude) / Decimal(1000) ** candidate).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
        if mantissa >= 1:
            power = candidate
            break
    mantissa = (Decimal(magnitude) / Decimal(1000) ** power).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    text = f"{mantissa:,f}".rstrip("0").rstrip(".")
    return ("-" if value < 0 else "") + f"{text} {PREFIXES[power]}"


@given(st.integers(min_value=-(10**20), max_value=10**20))
def test_si_count_agrees_with_the_rule_in_words(value: int) -> None:
    assert si_count(value) == reference(value)


@given(st.integers(min_value=1000, max_value=10**20))
def test_the_mantissa_stays_in_one_to_a_thousand(value: int) -> None:
    number, prefix = si_count(value).split(" ")
    assert prefix in PREFIXES[1:]
    assert 1 <= Decimal(number.replace(",", "")) < 1000
