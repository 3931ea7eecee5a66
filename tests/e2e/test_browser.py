"""The pages in real headless Chromium, under the real Content-Security-Policy.

Each test ends with a screenshot in artifacts/screenshots/ (see conftest.py) and fails on any
console error, page error or failed request. Waits use selectors only: Playwright's
wait_for_function evaluates strings, which the strict policy rightly refuses.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from app.core.calculator import builtin_table
from app.core.timeline import timeline
from app.specs import builtin_registry
from app.web.catalog import comparison, lecture_entries

from .conftest import Problems, Shoot

pytestmark = pytest.mark.browser

# The kinds that open a block on the per-layer charts (static/js/config.js VIEWS.blockKinds).
BLOCK_KINDS = {"conv", "maxpool", "avgpool", "adaptiveavgpool", "linear"}


def _plot(page: Page, element_id: str) -> dict[str, Any]:
    """The traces Plotly drew into #element_id: type, name and number of points."""
    page.wait_for_selector(f"#{element_id}.js-plotly-plot")
    traces: list[dict[str, Any]] = page.evaluate(
        """(id) => document.getElementById(id).data.map(
            (t) => ({type: t.type || 'scatter', name: t.name, points: (t.x || []).length}))""",
        element_id,
    )
    return {"traces": traces}


def _points(page: Page, element_id: str) -> list[int]:
    return [trace["points"] for trace in _plot(page, element_id)["traces"]]


def test_home_lists_every_net_and_draws_the_timeline(page: Page, problems: Problems) -> None:
    page.goto("/")
    rows = page.locator("#nets-table tr[data-net]")
    expect(rows).to_have_count(len(builtin_registry()))
    for spec in builtin_registry():
        expect(page.locator(f'#nets-table tr[data-net="{spec.id}"]')).to_contain_text(spec.name)
    entries = len(timeline().points)
    assert _points(page, "timeline-chart") == [entries, entries]  # error bars, depth bars
    assert problems.all() == []


@pytest.mark.parametrize("net_id", ["alexnet-lecture", "vgg16-bn"])
def test_a_net_page_shows_its_table_and_one_point_per_layer(
    page: Page, problems: Problems, net_id: str
) -> None:
    table = builtin_table(net_id)
    layers = len(table.layers)
    blocks = [row for row in table.layers if row.kind in BLOCK_KINDS]
    spatial = sum(1 for row in blocks if row.jump is not None)
    page.goto(f"/nets/{net_id}")
    expect(page.locator("#net-table tbody tr.layer")).to_have_count(layers)
    expect(page.locator("#net-table tbody tr.arith:visible")).to_have_count(0)
    # Blocks by default: the input, then W, H and D of each conv and pool block; FC units apart.
    assert _points(page, "net-volume") == [1 + spatial] * 3 + [len(blocks) - spatial]
    assert _points(page, "net-cost") == [len(blocks)] * 2  # params, MACs
    assert _points(page, "net-rf") == [len(blocks)]
    assert _points(page, "net-share") == [2, 2]  # conv side, FC side of both totals
    boxes = page.locator("#net-boxes")
    assert int(boxes.get_attribute("data-boxes") or 0) > 5
    assert problems.all() == []


def test_a_row_opens_to_its_arithmetic_by_keyboard_and_keeps_it_in_the_url(
    page: Page, problems: Problems
) -> None:
    conv1 = builtin_table("alexnet-lecture").layers[0]
    page.goto("/nets/alexnet-lecture")
    button = page.locator("#net-layer-0 button.expand")
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#net-arith-0")).to_be_visible()
    expect(page.locator("#net-arith-0")).to_contain_text(conv1.formula.output)
    assert page.url.endswith("#rows=conv1")
    page.reload()
    expect(page.locator("#net-arith-0")).to_be_visible()
    assert problems.all() == []


def test_rows_with_a_lecture_figure_show_its_verdict(page: Page, problems: Problems) -> None:
    table = builtin_table("zfnet-lecture")
    page.goto("/nets/zfnet-lecture")
    for row in table.layers:
        badges = page.locator(f"#net-layer-{row.index} .lecture-cell .badge")
        expect(badges).to_have_count(len(row.lecture))
        for index, figure in enumerate(row.lecture):
            expect(badges.nth(index)).to_contain_text(figure.verdict)
    assert problems.all() == []


def test_the_3d_view_loads_only_when_opened(page: Page, problems: Problems, shoot: Shoot) -> None:
    page.goto("/nets/alexnet-lecture")
    page.wait_for_selector("#net-boxes.js-plotly-plot")
    assert page.locator("script[src*='gl3d']").count() == 0
    page.get_by_role("button", name="Rotate in 3D").click()
    page.wait_for_selector("#net-boxes[data-view='3d'] .gl-container", state="attached")
    traces = _plot(page, "net-boxes")["traces"]
    assert {trace["type"] for trace in traces} == {"mesh3d"}
    assert len(traces) == int(page.locator("#net-boxes").get_attribute("data-boxes") or 0)
    page.locator("#net-boxes-figure").scroll_into_view_if_needed()
    shoot(page, "net-page-3d-view")
    page.get_by_role("button", name="Back to the flat view").click()
    page.wait_for_selector("#net-boxes[data-view='oblique']")
    assert problems.all() == []


def test_the_compare_page_shows_both_nets_and_highlights_the_changes(
    page: Page, problems: Problems
) -> None:
    expected = comparison("alexnet-lecture", "zfnet-lecture")
    page.goto("/compare")
    heading = page.locator("#totals-title")
    for net in (expected.a, expected.b):
        expect(heading).to_contain_text(net.name)
    statuses = page.locator("#aligned-table tbody tr").evaluate_all(
        "(rows) => rows.map((row) => row.dataset.status)"
    )
    assert statuses == [stage.status for stage in expected.stages]
    changed = page.locator("#aligned-table .settings li.changed .key").all_inner_texts()
    fields = [change.field for stage in expected.stages for change in stage.changes]
    assert sorted(changed) == sorted(fields * 2)  # highlighted on both sides
    assert _points(page, "overlay-sides") == [1 + len(expected.stages)] * 2  # the input first
    a_range = page.evaluate("document.getElementById('a-volume').layout.yaxis.range")
    b_range = page.evaluate("document.getElementById('b-volume').layout.yaxis.range")
    assert a_range == b_range
    assert problems.all() == []


def test_the_compare_page_takes_any_two_nets_from_the_url(page: Page, problems: Problems) -> None:
    page.goto("/compare?a=alexnet-torchvision&b=vgg19")
    page.select_option("select[name=b]", "vgg11")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_url("**/compare?a=alexnet-torchvision&b=vgg11")
    expect(page.locator("#totals-title")).to_contain_text(builtin_registry().get("vgg11").name)
    stages = len(comparison("alexnet-torchvision", "vgg11").stages)
    expect(page.locator("#aligned-table tbody tr")).to_have_count(stages)
    _plot(page, "b-rf")
    assert problems.all() == []


def test_the_lecture_page_lists_every_figure(page: Page, problems: Problems) -> None:
    page.goto("/lecture")
    expect(page.locator("#lecture-figures > li")).to_have_count(len(lecture_entries()))
    page.get_by_role("link", name="differs").click()
    page.wait_for_url("**/lecture?verdict=differs")
    differs = sum(1 for entry in lecture_entries() if entry.verdict == "differs")
    expect(page.locator("#lecture-figures > li")).to_have_count(differs)
    assert problems.all() == []


def test_the_api_docs_load_from_our_own_files(page: Page, problems: Problems) -> None:
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("ConvAtlas")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert problems.all() == []


# Records every Content-Security-Policy violation in an attribute (Playwright injects it through
# DevTools, so the policy does not apply to it; reading an attribute needs no eval).
CSP_PROBE = """
document.addEventListener('securitypolicyviolation', (event) => {
  const seen = document.documentElement.dataset.cspViolations;
  const what = `${event.violatedDirective} ${event.blockedURI}`;
  document.documentElement.dataset.cspViolations = seen ? `${seen} | ${what}` : what;
});
"""
# Records the order in which the charts got their first SVG.
DRAW_ORDER_PROBE = """
const drawn = [];
new MutationObserver(() => {
  for (const el of document.querySelectorAll('.js-plotly-plot')) {
    if (!drawn.includes(el.id) && el.querySelector('.main-svg')) drawn.push(el.id);
  }
  if (drawn.length) document.documentElement.dataset.drawOrder = drawn.join(' ');
}).observe(document, { childList: true, subtree: true });
"""
NET_PLOTS = ["volume", "cost", "share", "boxes", "rf"]
CHART_PAGES = {
    "/": ["timeline-chart"],
    "/nets/alexnet-lecture": [f"net-{key}" for key in NET_PLOTS],
    "/nets/vgg19-bn": [f"net-{key}" for key in NET_PLOTS],
    "/compare": [
        "overlay-sides",
        "overlay-depth",
        *[f"{side}-{key}" for side in "ab" for key in NET_PLOTS],
    ],
}


def _embedded(page: Page, element_id: str) -> tuple[str, Any]:
    """The API URL a page's data element names, and the JSON it carries."""
    element = page.locator(f"#{element_id}")
    src = element.get_attribute("data-src") or ""
    return src, json.loads(element.get_attribute("data-json") or "null")


@pytest.mark.parametrize("path", list(CHART_PAGES))
def test_every_chart_is_drawn_from_the_data_in_the_page(
    page: Page, problems: Problems, base_url: str, path: str
) -> None:
    """The charts need no request for their data, all of them get drawn (the first one first,
    the rest after it), and the strict policy is never violated on the way."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url.removeprefix(base_url)))
    page.add_init_script(CSP_PROBE)
    page.add_init_script(DRAW_ORDER_PROBE)
    page.goto(path)
    for element_id in CHART_PAGES[path]:
        page.wait_for_selector(f"#{element_id}.js-plotly-plot .main-svg", state="attached")
    page.wait_for_load_state("networkidle")
    order = (page.get_attribute("html", "data-draw-order") or "").split()
    assert sorted(order) == sorted(CHART_PAGES[path])
    assert order[0] == CHART_PAGES[path][0]  # the first chart on the page is drawn first
    if path.startswith("/nets/"):
        assert order == CHART_PAGES[path]  # then the others, one at a time, in page order
    charted = [url for url in requested if url.startswith("/api/") and "/api/predict" not in url]
    assert charted == []
    for element in page.locator(".page-data").all():
        src, value = _embedded(page, element.get_attribute("id") or "")
        assert value == httpx.get(base_url + src).json(), src
    assert page.get_attribute("html", "data-csp-violations") is None
    assert problems.all() == []


@pytest.mark.parametrize("path", ["/", "/nets/vgg16", "/compare", "/custom"])
def test_every_module_a_page_loads_was_preloaded(
    page: Page, problems: Problems, base_url: str, path: str
) -> None:
    modules: list[str] = []
    page.on(
        "request",
        lambda request: (
            modules.append(request.url.removeprefix(base_url))
            if "/static/js/" in request.url
            else None
        ),
    )
    page.goto(path)
    page.wait_for_load_state("networkidle")
    preloaded = page.locator("link[rel=modulepreload]").evaluate_all(
        "(links) => links.map((link) => link.getAttribute('href'))"
    )
    assert modules
    assert set(modules) <= set(preloaded)
    assert problems.all() == []


def test_a_resized_window_keeps_every_chart_whole(page: Page, problems: Problems) -> None:
    """Plotly's responsive resize takes the height from the element: it must stay the figure's
    (a window resized, or a page captured whole, once collapsed every chart to its border)."""
    page.goto("/nets/alexnet-lecture")
    ids = CHART_PAGES["/nets/alexnet-lecture"]
    for element_id in ids:
        page.wait_for_selector(f"#{element_id}.js-plotly-plot .main-svg", state="attached")
    before = {element_id: page.locator(f"#{element_id}").bounding_box() for element_id in ids}
    svg = "#net-rf .main-svg"
    width = page.locator(svg).first.get_attribute("width")
    page.set_viewport_size({"width": 1100, "height": 800})
    # Plotly redraws 100 ms after a resize: the last chart's new width is the sign it has.
    page.wait_for_selector(f"{svg}:not([width='{width}'])", state="attached")
    for element_id in ids:
        box = page.locator(f"#{element_id}").bounding_box()
        assert box is not None
        assert box["height"] == (before[element_id] or {}).get("height"), element_id
    assert problems.all() == []
