"""VGG's stacked 3x3 convs and conv1's sampling grid in the browser: drawn, axe-core finds no
serious or critical violation and nothing scrolls sideways at 1280 and 390 px; screenshots of
each view go to artifacts/screenshots/pages/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import VIEWPORTS, OpenAt, Problems
from .test_accessibility import blocking_violations, wait_for_charts
from .test_whatif_browser import no_sideways_scroll, page_shot

pytestmark = pytest.mark.browser

VIEWS = {
    "/nets/vgg16": ("#stacks", "3*3*256*256 + 3*3*256*256 + 3*3*256*256 = 1,769,472"),
    "/compare?a=alexnet-lecture&b=vgg16": ("#stacks-b", "7*7*256*256 = 3,211,264"),
    "/nets/zfnet-lecture": ("#first-layer", "1,800 of the 51,529 pixels"),
}


@pytest.mark.parametrize("device", list(VIEWPORTS))
@pytest.mark.parametrize("path", list(VIEWS))
def test_the_design_views_read_at_both_widths(
    open_at: OpenAt, problems: Problems, device: str, path: str
) -> None:
    viewport = VIEWPORTS[device]
    tab = open_at(viewport)
    tab.goto(path)
    section, words = VIEWS[path]
    view = tab.locator(section)
    expect(view).to_contain_text(words)
    wait_for_charts(tab)
    no_sideways_scroll(tab)
    assert blocking_violations(tab) == []
    name = section.lstrip("#") + "-" + path.strip("/").split("?")[0].replace("/", "-")
    page_shot(tab, f"{name}-{viewport['width']}")
    view.screenshot(path=f"artifacts/screenshots/pages/{name}-section-{viewport['width']}.png")
    assert problems.all() == []
