"""Predictions shown as what they are: top-5 probabilities on a fixed 0 to 100 % axis, random
weights' feature maps captioned as such, no claim of scale that is not true, and an untrained
banner in plain words that stays inside its card."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import FilePayload, Page, expect

from .conftest import Problems, Shoot

pytestmark = pytest.mark.browser


def _jpeg(data: bytes) -> FilePayload:
    return {"name": "holiday.jpg", "mimeType": "image/jpeg", "buffer": data}


def _axis(page: Page, element_id: str) -> dict[str, Any]:
    page.wait_for_selector(f"#{element_id}.js-plotly-plot")
    axis: dict[str, Any] = page.evaluate(
        """(id) => {
            const plot = document.getElementById(id);
            const axis = plot._fullLayout.xaxis;
            const largest = Math.max(...plot.data[0].x);
            return {range: axis.range, autorange: axis.autorange, largest};
        }""",
        element_id,
    )
    return axis


@pytest.mark.parametrize("width", [1280, 390])
def test_untrained_top5_and_maps_are_shown_as_noise(
    page: Page, problems: Problems, shoot: Shoot, photo_jpeg: bytes, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 844 if width == 390 else 800})
    page.goto("/nets/alexnet-lecture")
    panel = page.locator("#predict")
    expect(panel.locator("[data-state-chip]")).to_contain_text("ready")
    banner = panel.locator("[data-untrained-banner]")
    expect(banner).to_be_visible()
    text = banner.inner_text()
    for leak in ("http", "Errno", "seed 0", "--untrained"):
        assert leak not in text
    inside: bool = banner.evaluate("(el) => el.scrollWidth <= el.clientWidth")
    assert inside, "the banner's text spills out of its card"

    page.get_by_label("Choose a picture").set_input_files(_jpeg(photo_jpeg))
    expect(panel.locator("[data-upload-status]")).to_have_text("Done.")
    axis = _axis(page, "net-top5")
    assert (axis["range"], axis["autorange"]) == ([0, 1], False)  # 0 to 100 %, whatever the bars
    assert axis["largest"] < 0.5  # random weights: no class near the top of the axis

    strip = page.locator("#net-features")
    expect(strip.locator("[data-untrained-note]")).to_be_visible()
    expect(strip.locator("[data-untrained-note]")).to_contain_text("not learned features")
    caption = strip.locator("figcaption").inner_text()
    assert "drawn to scale" not in caption
    assert "not to scale" in caption
    page.locator("#predict").scroll_into_view_if_needed()
    shoot(page, f"net-page-untrained-prediction-{width}")
    assert problems.all() == []
