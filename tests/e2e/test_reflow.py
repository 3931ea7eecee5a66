"""Nothing needs horizontal scrolling: at 1280x800 and at 390x844 no page scrolls sideways, no
table scrolls inside its frame, and every lecture verdict, its reason and the layer table's
Lecture column lie inside the window. Each state is kept as a screenshot (artifacts/screenshots)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, ViewportSize

from app.web.catalog import lecture_entries

from .conftest import RENDER_EVERYTHING, Problems

pytestmark = pytest.mark.browser

WIDTHS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 800},
    "phone": {"width": 390, "height": 844},
}
PAGES = [
    "/",
    "/lecture",
    "/lecture?verdict=differs",
    "/nets/alexnet-lecture",
    "/nets/zfnet-lecture",
    "/nets/vgg19-bn",
    "/compare",
    "/compare?a=vgg19-bn&b=alexnet-2012",
    "/practice?net=vgg19-bn",
]

# What scrolls sideways: the page itself, or any box that scrolls its own overflow. The
# feature-map strip scrolls on purpose (one column per layer) and shows only after an upload.
OVERFLOWING = """() => {
  const found = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) {
    found.push(`the page: ${root.scrollWidth} > ${root.clientWidth}`);
  }
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.feature-scroll, [hidden]')) continue;
    const style = getComputedStyle(el);
    if (!['auto', 'scroll'].includes(style.overflowX)) continue;
    if (el.scrollWidth > el.clientWidth + 1) {
      const name = `${el.tagName.toLowerCase()}.${[...el.classList].join('.')}`;
      found.push(`${name}: ${el.scrollWidth} > ${el.clientWidth}`);
    }
  }
  return found;
}"""

# Elements whose box is not wholly inside the window, across (a verdict you must scroll to).
OUTSIDE = """(selector) => [...document.querySelectorAll(selector)]
  .filter((el) => el.getClientRects().length > 0)
  .map((el) => el.getBoundingClientRect())
  .filter((box) => box.left < 0 || box.right > document.documentElement.clientWidth + 0.5)
  .map((box) => `${Math.round(box.left)}..${Math.round(box.right)}`)"""


def _open(page: Page, viewport: ViewportSize, url: str) -> None:
    page.set_viewport_size(viewport)
    page.goto(url)
    page.wait_for_load_state("load")
    page.add_style_tag(content=RENDER_EVERYTHING)  # lay the lazy tables out, to measure them


def _outside(page: Page, selector: str) -> list[Any]:
    found: list[Any] = page.evaluate(OUTSIDE, selector)
    return found


@pytest.mark.parametrize("width", sorted(WIDTHS))
@pytest.mark.parametrize("url", PAGES)
def test_no_page_needs_horizontal_scrolling(
    page: Page, problems: Problems, url: str, width: str
) -> None:
    _open(page, WIDTHS[width], url)
    assert page.evaluate(OVERFLOWING) == []
    assert problems.all() == []


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_every_verdict_and_reason_is_in_view_across(
    page: Page, problems: Problems, width: str
) -> None:
    _open(page, WIDTHS[width], "/lecture")
    cards = page.locator("#lecture-figures > li")
    assert cards.count() == len(lecture_entries())
    assert page.locator("#lecture-figures .why").count() == sum(
        1 for entry in lecture_entries() if entry.why
    )
    for selector in (
        "#lecture-figures > li",
        "#lecture-figures .badge",
        "#lecture-figures .basis",
        "#lecture-figures .why",
        "#lecture-figures .figure-values",
        "#lecture-figures code",
        "#lecture-skipped > li",
    ):
        assert _outside(page, selector) == [], selector
    assert problems.all() == []


@pytest.mark.parametrize("width", sorted(WIDTHS))
@pytest.mark.parametrize("net_id", ["alexnet-lecture", "vgg19"])
def test_the_layer_tables_lecture_column_is_in_view(
    page: Page, problems: Problems, width: str, net_id: str
) -> None:
    _open(page, WIDTHS[width], f"/nets/{net_id}")
    assert page.locator("#net-table .lecture-cell").count() > 0
    assert _outside(page, "#net-table .lecture-cell") == []
    assert _outside(page, "#net-table .lecture-cell .badge") == []
    assert problems.all() == []


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_the_compare_tables_delta_column_is_in_view(
    page: Page, problems: Problems, width: str
) -> None:
    _open(page, WIDTHS[width], "/compare?a=vgg16&b=alexnet-lecture")
    deltas = "#aligned-table td.delta"
    assert page.locator(deltas).count() > 0
    assert _outside(page, deltas) == []
    assert _outside(page, "#aligned-table thead th") == []
    assert problems.all() == []
