"""What-if in the browser: the lecture's preset clicked on the net page swaps the edited net in
beside the original (its numbers from the calculator), the address follows, the form changes
conv1, and "open in the editor" carries the state to /custom; axe-core finds no serious or
critical violation and nothing scrolls sideways, at 1280 and 390 px. Screenshots go to
artifacts/screenshots/pages/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from app.core.calculator import builtin_table
from app.core.limits import SpecLimits
from app.core.whatif import NO_SHRINKAGE, Edits, preset_of, what_if
from app.specs import builtin_registry

from .conftest import RENDER_EVERYTHING, SCREENSHOTS, VIEWPORTS, OpenAt, Problems
from .test_accessibility import blocking_violations

pytestmark = pytest.mark.browser

NET = "alexnet-lecture"


def expected(edits: Edits) -> int:
    spec = builtin_registry().get(NET)
    return what_if(spec, builtin_table(NET), edits, SpecLimits()).headline.weights


def no_sideways_scroll(tab: Page) -> None:
    width = tab.evaluate("document.documentElement.scrollWidth")
    client = tab.evaluate("document.documentElement.clientWidth")
    assert width <= client, f"{tab.url} is {width} px wide in {client} px"


def page_shot(tab: Page, name: str) -> None:
    (SCREENSHOTS / "pages").mkdir(parents=True, exist_ok=True)
    tab.add_style_tag(content=RENDER_EVERYTHING)
    tab.screenshot(path=SCREENSHOTS / "pages" / f"{name}.png", full_page=True)


def charts_drawn(tab: Page) -> None:
    for key in ("sides", "depth"):
        tab.locator(f"#whatif-{key} .main-svg").first.wait_for(state="attached")


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_the_lecture_preset_is_one_click_away(
    open_at: OpenAt, problems: Problems, device: str
) -> None:
    viewport = VIEWPORTS[device]
    tab = open_at(viewport)
    tab.goto(f"/nets/{NET}")
    preset = tab.locator(f"a[data-preset={NO_SHRINKAGE}]")
    preset.scroll_into_view_if_needed()
    preset.click()
    headline = tab.locator("#whatif-headline")
    weights = expected(preset_of(builtin_registry().get(NET), NO_SHRINKAGE).edits)
    expect(headline).to_contain_text(f"{weights:,} weights (about 41.9 billion; about 168 GB")
    assert weights == 41_943_040_000
    assert tab.url.endswith(
        f"/nets/{NET}?remove_pools=pool1&remove_pools=pool2&remove_pools=pool3"
        "&conv1_stride=1&input_side=220#whatif"
    )
    expect(tab.locator("input[name=input_side]")).to_have_value("220")
    expect(tab.locator("input[name=remove_pools][value=pool2]")).to_be_checked()
    charts_drawn(tab)
    tab.wait_for_load_state("networkidle")
    no_sideways_scroll(tab)
    assert blocking_violations(tab) == []
    page_shot(tab, f"whatif-{NET}-no-shrinkage-{viewport['width']}")
    # a reload of the shared address shows the same what-if, rendered by the server
    tab.reload()
    expect(tab.locator("#whatif-headline")).to_contain_text(f"{weights:,} weights")
    charts_drawn(tab)
    assert problems.all() == []


def test_the_form_changes_conv1_and_the_editor_opens_the_what_if(
    open_at: OpenAt, problems: Problems
) -> None:
    tab = open_at(VIEWPORTS["desktop"])
    tab.goto(f"/nets/{NET}#whatif")
    tab.fill("input[name=conv1_kernel]", "7")
    tab.fill("input[name=conv1_stride]", "2")
    tab.locator("#whatif-form button[type=submit]").click()
    weights = expected(Edits(conv1_kernel=7, conv1_stride=2))
    expect(tab.locator("#whatif-headline")).to_contain_text(f"{weights:,} weights")
    assert "conv1_kernel=7&conv1_stride=2" in tab.url
    first = tab.locator("#whatif-aligned tr.stage").first
    expect(first).to_have_attribute("data-status", "changed")
    charts_drawn(tab)
    # a what-if the net cannot take is named at the form: the layer and why
    tab.fill("input[name=input_side]", "40")
    tab.locator("#whatif-form button[type=submit]").click()
    expect(tab.locator("#whatif-error")).to_contain_text("is larger than the padded input")
    tab.fill("input[name=input_side]", "")
    tab.locator("#whatif-form button[type=submit]").click()
    expect(tab.locator("#whatif-headline")).to_contain_text(f"{weights:,} weights")
    tab.locator("#whatif-editor").click()
    tab.wait_for_url("**/custom?spec=*")
    expect(tab.locator("h1, h2").first).to_be_visible()
    assert "what-if" in tab.content()
    assert problems.all() == []
