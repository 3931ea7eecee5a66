"""static/js/format.js in Chromium gives, value for value, what app/core/numbers.py gives."""

from __future__ import annotations

import random

import pytest
from playwright.sync_api import Page

from app.core.numbers import exact_count, si_count, signed_si_count
from app.settings import get_settings
from app.web.assets import Assets

from .conftest import Problems

pytestmark = pytest.mark.browser


def _values() -> list[int]:
    draw = random.Random(10)
    values = [0, 999, 1_000, 1_005, 642_000, 999_994, 999_995, 138_357_544, 614_310_432]
    for digits in range(1, 22):  # every prefix, with values at and around the rounding edges
        values += [draw.randrange(10 ** (digits - 1), 10**digits) for _ in range(40)]
        values += [10**digits - 1, 10**digits, 10**digits - 5 * 10 ** max(0, digits - 6)]
    return values + [-value for value in values[:200]]


FORMAT_ALL = """async ([url, values]) => {
    const format = await import(url);
    return values.map((v) => [
        format.siCount(BigInt(v)), format.signedSiCount(BigInt(v)), format.exactCount(BigInt(v)),
    ]);
}"""


def test_the_js_formatter_is_the_python_one(page: Page, problems: Problems) -> None:
    url = Assets(get_settings().static_dir).url("js/format.js")
    values = _values()
    page.goto("/lecture")
    shown = page.evaluate(FORMAT_ALL, [url, [str(value) for value in values]])
    expected = [[si_count(v), signed_si_count(v), exact_count(v)] for v in values]
    pairs = zip(values, shown, expected, strict=True)
    mismatches = [(v, js, py) for v, js, py in pairs if js != py]
    assert mismatches == []
    assert problems.all() == []


def test_the_js_formatter_takes_plain_numbers_and_refuses_fractions(page: Page) -> None:
    url = Assets(get_settings().static_dir).url("js/format.js")
    page.goto("/lecture")
    answer = page.evaluate(
        """async (url) => {
            const format = await import(url);
            let refused = false;
            try { format.siCount(0.5); } catch (error) { refused = error instanceof RangeError; }
            return [format.siCount(642000), format.siCount(614310432), refused];
        }""",
        url,
    )
    assert answer == ["642 K", "614.31 M", True]
