"""Every page, at a laptop's 1280x800 and a phone's 390x844: axe-core finds no serious or critical
violation once every chart is drawn, nothing needs horizontal scrolling, and a screenshot of the
whole page goes to artifacts/screenshots/pages/.

axe-core comes bundled in PyPI's axe-playwright-python (a dev extra), injected through Playwright
(DevTools), so the pages' strict Content-Security-Policy stays as it is.
"""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, ViewportSize

from app.specs import builtin_registry

from .conftest import SCREENSHOTS, VIEWPORTS, OpenAt, Problems, final_screenshot

pytestmark = pytest.mark.browser

PAGES = [
    "/",
    *[f"/nets/{net_id}" for net_id in builtin_registry().ids()],
    "/compare",
    "/compare?a=vgg11&b=vgg19-bn",
    "/custom",
    "/lecture",
    "/practice",
]
BLOCKING = {"serious", "critical"}
AXE = Axe()
# axe-core 4.14 runs label-content-name-mismatch by default; the 4.12 bundled here has it as
# experimental, so it is switched on: the pages are held to the newer release's rules.
AXE_OPTIONS = {
    "resultTypes": ["violations"],
    "rules": {"label-content-name-mismatch": {"enabled": True}},
}


def slug(path: str) -> str:
    name = path.strip("/").replace("/", "-").replace("?", "-").replace("&", "-").replace("=", "-")
    return name or "home"


def wait_for_charts(tab: Page) -> None:
    """Every chart the page draws on load is drawn (the top-5 plots wait for an upload)."""
    for plot in tab.locator(".plot:not(.top5-plot)").all():
        plot.locator(".main-svg").first.wait_for(state="attached")
    tab.wait_for_load_state("networkidle")


def blocking_violations(tab: Page) -> list[str]:
    results: dict[str, Any] = AXE.run(tab, options=AXE_OPTIONS).response
    return [
        f"{violation['id']} ({violation['impact']}): {node['target']} {node['failureSummary']}"
        for violation in results["violations"]
        if violation["impact"] in BLOCKING
        for node in violation["nodes"]
    ]


def page_screenshot(tab: Page, name: str) -> None:
    """The tab's final state, in pages/; the test's own end-of-test screenshot is its copy."""
    final_screenshot(tab, SCREENSHOTS / "pages" / f"{name}.png")


@pytest.mark.parametrize("device", list(VIEWPORTS))
@pytest.mark.parametrize("path", PAGES)
def test_a_page_has_no_serious_accessibility_violation(
    open_at: OpenAt, problems: Problems, path: str, device: str
) -> None:
    viewport: ViewportSize = VIEWPORTS[device]
    tab = open_at(viewport)
    tab.goto(path)
    wait_for_charts(tab)
    assert blocking_violations(tab) == []
    width = tab.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{path} is {width} px wide at {viewport['width']} px"
    page_screenshot(tab, f"{slug(path)}-{viewport['width']}")
    assert problems.all() == []


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_the_custom_editor_with_problems_and_every_layer_shown_stays_accessible(
    open_at: OpenAt, problems: Problems, device: str
) -> None:
    """The states a page only reaches by use: a spec with problems (fields marked invalid, the
    table out of date), every layer on the charts, and each chart's numbers open."""
    tab = open_at(VIEWPORTS[device])
    tab.goto("/custom")
    tab.wait_for_selector("#editor[data-state='valid']")
    tab.get_by_label("out_channels of layer 0").fill("-5")
    tab.wait_for_selector("#editor[data-state='invalid']")
    tab.get_by_role("button", name="Every layer").click()
    for summary in tab.locator("details.chart-data:not([hidden]) > summary").all():
        summary.click()
    wait_for_charts(tab)
    assert blocking_violations(tab) == []
    page_screenshot(tab, f"custom-with-problems-{VIEWPORTS[device]['width']}")
    assert problems.all() == []
