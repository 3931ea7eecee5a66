"""The receptive field on the photo: after a picture goes through AlexNet (as taught), clicking a
cell of a feature map names the input pixels that cell sees, from the calculator's RF, jump and
start, and draws them on the picture as the net saw it; the keyboard moves the cell. axe-core finds
no serious or critical violation and nothing scrolls sideways at 1280 and 390 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.core.calculator import builtin_table
from app.core.receptive import unit_fields
from app.specs import builtin_registry

from .conftest import VIEWPORTS, OpenAt, Problems
from .test_accessibility import blocking_violations
from .test_whatif_browser import no_sideways_scroll, page_shot

pytestmark = pytest.mark.browser

NET = "alexnet-lecture"
FIELDS = {
    field.name: field for field in unit_fields(builtin_registry().get(NET), builtin_table(NET))
}


def sentence(name: str, row: int, col: int) -> str:
    field = FIELDS[name]
    x, y = field.start + col * field.jump, field.start + row * field.jump
    last = field.receptive_field - 1
    return (
        f"{name}, row {row + 1} and column {col + 1} of its {field.output.width}\u00d7"
        f"{field.output.height}: receptive field {field.receptive_field}\u00d7"
        f"{field.receptive_field} input pixels, x {x} to {x + last}, y {y} to {y + last}"
    )


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_a_click_on_a_feature_map_shows_what_that_cell_sees(
    open_at: OpenAt, problems: Problems, device: str
) -> None:
    viewport = VIEWPORTS[device]
    tab = open_at(viewport)
    tab.goto(f"/nets/{NET}")
    tab.locator("#predict").get_by_role("button", name="Tabby cat").click()
    panel = tab.locator("#net-features [data-rf-photo]")
    numbers = panel.locator("[data-rf-numbers]")
    expect(numbers).to_contain_text(sentence("pool3", 1, 1), timeout=60_000)
    expect(panel.locator("[data-rf-view]")).to_contain_text(
        "Your 451\u00d7300 picture as alexnet-lecture saw it: resized so its shorter side is 256 px"
    )
    # conv2's first map, clicked in its top-left cell
    conv2 = tab.locator("#net-features li.feature-col").nth(3).locator("img").first
    conv2.scroll_into_view_if_needed()
    conv2.click(position={"x": 1, "y": 1})
    expect(numbers).to_contain_text(sentence("conv2", 0, 0))
    tab.keyboard.press("ArrowRight")
    tab.keyboard.press("ArrowDown")
    expect(numbers).to_contain_text(sentence("conv2", 1, 1))
    assert panel.get_attribute("data-cell") == "1,1"
    canvas = panel.locator("canvas")
    assert (
        canvas.evaluate("c => c.width > 0 && c.getContext('2d').getImageData(1, 1, 1, 1).data[3]")
        == 255
    )
    panel.scroll_into_view_if_needed()
    no_sideways_scroll(tab)
    assert blocking_violations(tab) == []
    page_shot(tab, f"rf-photo-{NET}-{viewport['width']}")
    tab.locator("#net-features").screenshot(
        path=f"artifacts/screenshots/pages/rf-photo-strip-{viewport['width']}.png"
    )
    assert problems.all() == []
