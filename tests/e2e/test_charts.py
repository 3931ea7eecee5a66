"""The per-layer charts teach what the lecture teaches: the input first, conv channels and FC
units told apart, blocks or every layer, readable box labels (flat and 3D) at any width, no
legend or axis title over the data on a phone, exact numbers on hover and in a table, and PNGs
named and titled for the net and the chart."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from app.core.calculator import builtin_table
from app.core.numbers import exact_count
from app.core.table import LayerRow, Table
from app.web.catalog import comparison
from app.web.templating import volume

from .conftest import PHONE, VIEWPORTS, OpenAt, Problems

pytestmark = pytest.mark.browser

# The kinds that open a block (static/js/config.js VIEWS.blockKinds).
BLOCK_KINDS = {"conv", "maxpool", "avgpool", "adaptiveavgpool", "linear"}
POOLS = {"maxpool", "avgpool", "adaptiveavgpool"}


def _drawn(page: Page, element_id: str) -> None:
    page.wait_for_selector(f"#{element_id}.js-plotly-plot .main-svg", state="attached")


def _traces(page: Page, element_id: str) -> list[dict[str, Any]]:
    _drawn(page, element_id)
    traces: list[dict[str, Any]] = page.evaluate(
        """(id) => document.getElementById(id).data.map((t) => ({
            name: t.name, x: t.x, y: t.y, customdata: t.customdata ?? null}))""",
        element_id,
    )
    return traces


def _blocks(table: Table) -> list[LayerRow]:
    return [row for row in table.layers if row.kind in BLOCK_KINDS]


def _volume(row: LayerRow) -> str:
    return volume(row.output)


def test_the_volume_chart_starts_at_the_input_and_tells_units_from_channels(
    page: Page, problems: Problems
) -> None:
    table = builtin_table("alexnet-lecture")
    blocks = _blocks(table)
    spatial = [row for row in blocks if row.jump is not None]
    fc = [row for row in blocks if row.jump is None]
    page.goto("/nets/alexnet-lecture")
    width, height, channels, units = _traces(page, "net-volume")
    assert width["x"] == ["input", *[row.name for row in spatial]]
    assert width["y"] == [table.input.width, *[row.output.width for row in spatial]]
    assert height["y"] == [table.input.height, *[row.output.height for row in spatial]]
    assert channels["y"] == [table.input.channels, *[row.output.channels for row in spatial]]
    assert (units["name"], units["x"], units["y"]) == (
        "units (FC)",
        [row.name for row in fc],
        [row.output.channels for row in fc],  # 4096, 4096, 1000
    )
    assert channels["name"] == "channels D (conv, pool)"
    title = page.evaluate("document.getElementById('net-volume').layout.yaxis2.title.text")
    assert "channels" in title
    assert "units" in title
    assert problems.all() == []


def test_the_view_toggle_shows_every_layer_and_back_from_the_keyboard(
    page: Page, problems: Problems
) -> None:
    table = builtin_table("vgg16-bn")
    page.goto("/nets/vgg16-bn")
    _drawn(page, "net-rf")
    blocks = _blocks(table)
    assert [len(t["x"]) for t in _traces(page, "net-cost")] == [len(blocks)] * 2
    every = page.get_by_role("button", name="Every layer")
    expect(every).to_have_attribute("aria-pressed", "false")
    every.focus()
    page.keyboard.press("Space")
    expect(every).to_have_attribute("aria-pressed", "true")
    layers = len(table.layers)
    page.wait_for_selector("[data-view-for='net'][data-drawn='all']")
    expect(page.locator("#net-cost-data tbody tr")).to_have_count(layers)
    assert [len(t["x"]) for t in _traces(page, "net-cost")] == [layers] * 2
    assert [len(t["x"]) for t in _traces(page, "net-rf")] == [layers]
    spatial = sum(1 for row in table.layers if row.jump is not None)
    assert [len(t["x"]) for t in _traces(page, "net-volume")] == [1 + spatial] * 3 + [
        layers - spatial
    ]
    blocks_button = page.get_by_role("button", name="Blocks: conv, pool, FC")
    blocks_button.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-view-for='net'][data-drawn='blocks']")
    expect(page.locator("#net-cost-data tbody tr")).to_have_count(len(blocks))
    assert problems.all() == []


def test_hovers_and_the_numbers_table_give_exact_counts(page: Page, problems: Problems) -> None:
    table = builtin_table("alexnet-lecture")
    blocks = _blocks(table)
    page.goto("/nets/alexnet-lecture")
    params, macs = _traces(page, "net-cost")
    assert [item[0] for item in params["customdata"]] == [exact_count(r.params) for r in blocks]
    assert [item[0] for item in macs["customdata"]] == [exact_count(r.macs) for r in blocks]
    ticks = page.evaluate("document.getElementById('net-cost').layout.yaxis.ticktext")
    assert "100 M" in ticks  # the SI prefix chosen per value, as the formatter writes it
    page.locator("#net-cost-data > summary").click()
    rows = page.locator("#net-cost-data tbody tr")
    expect(rows).to_have_count(len(blocks))
    expect(rows.nth(0)).to_contain_text(exact_count(blocks[0].params))
    page.locator("#net-volume-data > summary").click()
    first = page.locator("#net-volume-data tbody tr").first
    expect(first.locator("th")).to_have_text("input")
    expect(first).to_contain_text(str(table.input.width))
    assert problems.all() == []


def _rects(page: Page, selector: str) -> list[dict[str, float]]:
    rects: list[dict[str, float]] = page.locator(selector).evaluate_all(
        """(els) => els.map((el) => { const r = el.getBoundingClientRect();
            return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; })"""
    )
    return [r for r in rects if r["right"] > r["left"] and r["bottom"] > r["top"]]


def _overlap(a: dict[str, float], b: dict[str, float], slack: float = 1.0) -> bool:
    return (
        a["left"] < b["right"] - slack
        and b["left"] < a["right"] - slack
        and a["top"] < b["bottom"] - slack
        and b["top"] < a["bottom"] - slack
    )


@pytest.mark.parametrize("device", list(VIEWPORTS))
@pytest.mark.parametrize("net_id", ["alexnet-lecture", "zfnet-2013", "vgg19-bn"])
def test_box_labels_name_every_volume_and_never_overlap(
    open_at: OpenAt, problems: Problems, net_id: str, device: str
) -> None:
    page = open_at(VIEWPORTS[device])
    page.goto(f"/nets/{net_id}")
    _drawn(page, "net-boxes")
    texts: list[str] = page.locator("#net-boxes .annotation-text").evaluate_all(
        """(els) => els.map((el) => [...el.querySelectorAll('tspan.line')]
            .map((line) => line.textContent).join('\\n') || el.textContent)"""
    )
    table = builtin_table(net_id)
    previous = table.input
    for row in _blocks(table):
        wanted = f"{exact_count(row.output.channels)} units" if row.jump is None else _volume(row)
        # A pool that changes nothing (VGG's adaptive 7x7 pool) shares the box before it.
        shares_a_box = row.kind in POOLS and row.output == previous
        assert shares_a_box or f"{row.name}\n{wanted}" in texts, row.name
        previous = row.output
    labels = _rects(page, "#net-boxes .annotation-text-g .annotation-text")
    assert len(labels) == len(texts)
    clashes = [
        (i, j) for i in range(len(labels)) for j in range(i) if _overlap(labels[i], labels[j])
    ]
    assert clashes == []
    frame = _rects(page, "#net-boxes")[0]
    for label in labels:
        assert frame["left"] <= label["left"]
        assert label["right"] <= frame["right"]
    assert problems.all() == []


@pytest.mark.parametrize(
    ("path", "charts"),
    [
        ("/nets/vgg19-bn", ["net-volume", "net-cost", "net-rf"]),
        ("/nets/alexnet-lecture", ["net-volume", "net-cost", "net-share", "net-rf"]),
        ("/compare", ["overlay-sides", "overlay-depth", "a-volume", "b-cost"]),
    ],
)
def test_on_a_phone_no_legend_or_axis_title_covers_the_data(
    open_at: OpenAt, problems: Problems, path: str, charts: list[str]
) -> None:
    page = open_at(PHONE)
    page.goto(path)
    for chart in charts:
        _drawn(page, chart)
        plots = _rects(page, f"#{chart} .nsewdrag")
        covers = _rects(page, f"#{chart} .legend") + _rects(page, f"#{chart} .g-ytitle")
        covers += _rects(page, f"#{chart} .g-y2title")
        assert plots
        assert covers
        assert [(c, p) for c in covers for p in plots if _overlap(c, p)] == [], chart
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert problems.all() == []


def test_a_png_is_named_for_the_net_and_the_chart_and_titled(
    page: Page, problems: Problems
) -> None:
    page.goto("/nets/alexnet-lecture")
    _drawn(page, "net-volume")
    with page.expect_download() as download:
        page.locator("button[data-png='net-volume']").click()
    assert download.value.suggested_filename == "alexnet-lecture-volume.png"
    picture = Image.open(io.BytesIO(download.value.path().read_bytes())).convert("L")
    layout_height = page.evaluate("document.getElementById('net-volume').layout.height")
    assert picture.height == 2 * (layout_height + 44)  # scale 2, with room for the title
    title_band = picture.crop((0, 0, picture.width // 2, 2 * 40))
    assert title_band.getextrema()[0] < 100  # dark text: the title is there

    expected = comparison("alexnet-lecture", "zfnet-lecture")
    page.goto("/compare")
    _drawn(page, "overlay-depth")
    with page.expect_download() as download:
        page.locator("button[data-png='overlay-depth']").click()
    assert download.value.suggested_filename == (f"{expected.a.id}-vs-{expected.b.id}-depth.png")
    assert problems.all() == []


def test_the_3d_view_labels_each_box_with_its_volume(page: Page, problems: Problems) -> None:
    table = builtin_table("alexnet-lecture")
    page.goto("/nets/alexnet-lecture")
    _drawn(page, "net-boxes")
    page.get_by_role("button", name="Rotate in 3D").click()
    page.wait_for_selector("#net-boxes[data-view='3d'] .gl-container", state="attached")
    texts: list[str] = page.evaluate(
        "document.getElementById('net-boxes').layout.scene.annotations.map((a) => a.text)"
    )
    assert texts[0] == f"input<br>{volume(table.input)}"
    conv1 = table.layers[0]
    assert f"{conv1.name}<br>{_volume(conv1)}" in texts
    assert problems.all() == []
