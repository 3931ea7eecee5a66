"""What the pages draw, read back from the page and compared with the golden tables
(tests/golden/tables) and with the answers the page received: every value a chart plots (each
trace's x labels and y values, as Plotly holds them in the graph div), every number cell of a
net's table (read from the DOM), the top-5 bars against the predict JSON of the same request
(and the bars' drawn lengths against its probabilities), and the compare page's differences
against differences taken between two golden tables.

Nothing here calls the calculator: a page that draws a wrong number fails even if the code that
computed it changed the same way.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.goldens import golden_table

from .conftest import Problems

pytestmark = pytest.mark.browser

# The kinds that open a block on the per-layer charts (static/js/config.js VIEWS.blockKinds).
BLOCK_KINDS = {"conv", "maxpool", "avgpool", "adaptiveavgpool", "linear"}
TIMES = "\u00d7"


# --- reading the page ------------------------------------------------------------------------


def drawn_traces(page: Page, element_id: str) -> list[dict[str, Any]]:
    """Each trace Plotly holds in the graph div: name, x and y as drawn (a horizontal bar's
    categories are its y)."""
    page.wait_for_selector(f"#{element_id}.js-plotly-plot .main-svg", state="attached")
    traces: list[dict[str, Any]] = page.evaluate(
        """(id) => document.getElementById(id).data.map(
            (t) => ({name: t.name ?? null, x: Array.from(t.x ?? []), y: Array.from(t.y ?? [])}))""",
        element_id,
    )
    return traces


def count_of(text: str) -> int:
    """'34,944' -> 34944; '+1,024' and '-96' keep their sign; '0' -> 0."""
    cleaned = text.strip().replace(",", "").replace("\u2212", "-")
    assert re.fullmatch(r"[+-]?\d+", cleaned), text
    return int(cleaned)


def volume_of(text: str) -> dict[str, int]:
    width, height, channels = (int(part) for part in text.strip().split(TIMES))
    return {"width": width, "height": height, "channels": channels}


# The cells of each layer row and of the totals row, by their data-label.
ROW_CELLS = """(rows) => rows.map((row) => {
    const cell = (label, inner) => {
        const td = row.querySelector(`td[data-label="${label}"]`);
        const part = td && inner ? td.querySelector(inner) : td;
        return part ? part.textContent : null;
    };
    return {
        name: row.dataset.layer ?? null,
        index: cell('#'),
        input: cell('Input W\u00d7H\u00d7D'),
        output: cell('Output W\u00d7H\u00d7D'),
        params: cell('Params', '.strong'),
        split: cell('Params', '.split'),
        macs: cell('MACs'),
        rf: cell('RF'),
    };
})"""


# --- what the golden table says a chart should show --------------------------------------------


def chart_points(table: dict[str, Any], view: str) -> list[dict[str, Any]]:
    """The rows a per-layer chart shows: every layer, or the block openers (conv, pool, FC;
    the first layer always opens one)."""
    layers: list[dict[str, Any]] = table["layers"]
    if view == "all":
        return layers
    return [row for i, row in enumerate(layers) if i == 0 or row["kind"] in BLOCK_KINDS]


def expected_volume(table: dict[str, Any], view: str) -> list[tuple[list[Any], list[Any]]]:
    """W, H and D of the input and each spatial point; then the FC points' units apart."""
    points = chart_points(table, view)
    sides = [{"name": "input", "output": table["input"]}] + [
        row for row in points if row["jump"] is not None
    ]
    vectors = [row for row in points if row["jump"] is None]
    names = [row["name"] for row in sides]
    return [
        (names, [row["output"]["width"] for row in sides]),
        (names, [row["output"]["height"] for row in sides]),
        (names, [row["output"]["channels"] for row in sides]),
        ([row["name"] for row in vectors], [row["output"]["channels"] for row in vectors]),
    ]


def expected_cost(table: dict[str, Any], view: str) -> list[tuple[list[Any], list[Any]]]:
    points = chart_points(table, view)
    names = [row["name"] for row in points]
    return [(names, [row["params"] for row in points]), (names, [row["macs"] for row in points])]


def expected_rf(table: dict[str, Any], view: str) -> list[tuple[list[Any], list[Any]]]:
    points = chart_points(table, view)
    return [([row["name"] for row in points], [row["receptive_field"] for row in points])]


def xy(traces: list[dict[str, Any]]) -> list[tuple[list[Any], list[Any]]]:
    return [(trace["x"], trace["y"]) for trace in traces]


NETS = ["alexnet-lecture", "zfnet-2013", "vgg16-bn"]


@pytest.mark.parametrize("net_id", NETS)
def test_a_net_pages_charts_plot_the_golden_tables_numbers(
    page: Page, problems: Problems, net_id: str
) -> None:
    golden = golden_table(net_id)
    page.goto(f"/nets/{net_id}")
    received = page.locator("#net-table-data").get_attribute("data-json") or ""
    assert page.evaluate("(text) => JSON.parse(text)", received) == golden
    for view in ("blocks", "all"):
        if view == "all":
            page.locator('[data-view-for="net"] button[data-chart-view="all"]').click()
            page.wait_for_selector('[data-view-for="net"][data-drawn="all"]', state="attached")
        assert xy(drawn_traces(page, "net-volume")) == expected_volume(golden, view), view
        assert xy(drawn_traces(page, "net-cost")) == expected_cost(golden, view), view
        assert xy(drawn_traces(page, "net-rf")) == expected_rf(golden, view), view
    totals = golden["totals"]
    share = {trace["name"]: trace for trace in drawn_traces(page, "net-share")}
    assert share["conv side"]["x"] == [totals["conv_params"], totals["conv_macs"]]
    assert share["FC side"]["x"] == [totals["fc_params"], totals["fc_macs"]]
    assert share["conv side"]["y"] == share["FC side"]["y"] == ["parameters", "MACs"]
    assert problems.all() == []


@pytest.mark.parametrize("net_id", NETS)
def test_a_net_tables_cells_are_the_golden_tables_numbers(
    page: Page, problems: Problems, net_id: str
) -> None:
    golden = golden_table(net_id)
    page.goto(f"/nets/{net_id}")
    rows = page.locator("#net-table tbody tr.layer").evaluate_all(ROW_CELLS)
    assert len(rows) == len(golden["layers"])
    for row, layer in zip(rows, golden["layers"], strict=True):
        where = f"{net_id} {layer['name']}"
        assert row["name"] == layer["name"], where
        assert count_of(row["index"]) == layer["index"], where
        assert volume_of(row["input"]) == layer["input"], where
        assert volume_of(row["output"]) == layer["output"], where
        assert count_of(row["params"]) == layer["params"], where
        if layer["params"]:
            weights, biases = row["split"].split("+")
            assert (count_of(weights), count_of(biases)) == (layer["weights"], layer["biases"])
        else:
            assert row["split"] is None, where
        assert count_of(row["macs"]) == layer["macs"], where
        assert count_of(row["rf"]) == layer["receptive_field"], where
    [total] = page.locator("#net-table tfoot tr").evaluate_all(ROW_CELLS)
    totals = golden["totals"]
    assert count_of(total["params"]) == totals["params"]
    weights, biases = total["split"].split("+")
    assert (count_of(weights), count_of(biases)) == (totals["weights"], totals["biases"])
    assert count_of(total["macs"]) == totals["macs"]
    assert problems.all() == []


# --- the top-5 bars against the predict answer of the same request ------------------------------


def precision3(value: float) -> str:
    """JavaScript's value.toPrecision(3) for the percentages a top-5 list shows (0.1 to 100)."""
    return f"{value:#.3g}".rstrip(".")


def test_the_top5_bars_are_the_predict_answers_probabilities(
    page: Page, problems: Problems, photo_jpeg: bytes
) -> None:
    page.goto("/nets/alexnet-lecture")
    expect(page.locator("#predict [data-state-chip]")).to_contain_text("ready")
    with page.expect_response(
        lambda response: (
            response.url.endswith("/api/predict/alexnet-lecture")
            and response.request.method == "POST"
        )
    ) as answered:
        page.get_by_label("Choose a picture").set_input_files(
            {"name": "holiday.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg}
        )
    top5 = answered.value.json()["top5"]
    assert len(top5) == 5
    [bars] = drawn_traces(page, "net-top5")
    drawn = list(zip(reversed(bars["y"]), reversed(bars["x"]), strict=True))  # drawn bottom-up
    assert drawn == [(f"{entry['rank']}. {entry['label']}", entry["probability"]) for entry in top5]
    items = page.locator("#predict [data-top5-list] li").all_inner_texts()
    assert items == [
        f"{entry['label']}: {precision3(entry['probability'] * 100)} %" for entry in top5
    ]
    assert problems.all() == []


# An answer a trained net could give: bars long enough to measure on the page.
CONFIDENT = [0.62, 0.21, 0.09, 0.05, 0.03]


def test_the_top5_bars_are_drawn_to_scale(
    page: Page, problems: Problems, photo_jpeg: bytes
) -> None:
    """The test nets are untrained (every probability near 1/1000, bars under a pixel long), so
    the server's real answer is passed on with confident probabilities put in: each bar must
    then start at the axis's 0 and be its probability's share of the plot area's width."""

    def confident(route: Route) -> None:
        if route.request.method != "POST":  # the page's GET of the net's state
            route.continue_()
            return
        answer = route.fetch().json()
        for entry, probability in zip(answer["top5"], CONFIDENT, strict=True):
            entry["probability"] = probability
        route.fulfill(json=answer)

    page.route("**/api/predict/alexnet-lecture", confident)
    page.goto("/nets/alexnet-lecture")
    expect(page.locator("#predict [data-state-chip]")).to_contain_text("ready")
    page.get_by_label("Choose a picture").set_input_files(
        {"name": "holiday.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg}
    )
    [bars] = drawn_traces(page, "net-top5")
    assert list(reversed(bars["x"])) == CONFIDENT
    drawn = page.locator("#net-top5").evaluate(
        """(plot) => {
            const size = plot._fullLayout._size;
            const left = plot.getBoundingClientRect().left + size.l;
            const bars = Array.from(plot.querySelectorAll('.barlayer .point path'), (path) => {
                const box = path.getBoundingClientRect();
                return {start: box.left - left, length: box.width};
            });
            return {width: size.w, bars};
        }"""
    )
    for bar, probability in zip(drawn["bars"], reversed(CONFIDENT), strict=True):
        assert bar["start"] == pytest.approx(0, abs=1.0), bar
        assert bar["length"] == pytest.approx(probability * drawn["width"], abs=1.0), bar
    assert problems.all() == []


# --- the compare page's differences against golden differences ----------------------------------

TOTALS_CELLS = """(rows) => rows.map((row) => ({
    quantity: row.querySelector('th').textContent.trim(),
    a: row.querySelector('td[data-label="A"]').textContent,
    b: row.querySelector('td[data-label="B"]').textContent,
    difference: row.querySelector('td[data-label="Difference"]').textContent,
}))"""
STAGE_CELLS = """(rows) => rows.map((row) => {
    const side = (who) => {
        const params = row.querySelector(`td[data-label="${who} params"]`);
        if (!params) return null;
        const chips = row.querySelectorAll('th.stage-name .kind-chip');
        const chip = chips[who === 'A' ? 0 : chips.length - 1];
        return {label: chip.textContent, params: params.textContent};
    };
    const delta = row.querySelector('td[data-label="\u0394 params"]').textContent;
    return {a: side('A'), b: side('B'), delta};
})"""


def stage_params(table: dict[str, Any], labels: list[str]) -> dict[str, int]:
    """Each stage's params from the golden table: its layer's and those of the layers up to
    the next stage's (its helpers: ReLU, LRN, batch norm, dropout)."""
    names = [row["name"] for row in table["layers"]]
    starts = [names.index(label) for label in labels]
    ends = [*starts[1:], len(names)]
    layers = table["layers"]
    return {
        label: sum(row["params"] for row in layers[start:end])
        for label, start, end in zip(labels, starts, ends, strict=True)
    }


@pytest.mark.parametrize(("a", "b"), [("alexnet-2012", "zfnet-2013"), ("vgg16", "vgg16-bn")])
def test_the_compare_pages_differences_are_the_golden_tables_differences(
    page: Page, problems: Problems, a: str, b: str
) -> None:
    golden_a, golden_b = golden_table(a), golden_table(b)
    page.goto(f"/compare?a={a}&b={b}")
    totals = page.locator("#totals-table tbody tr").evaluate_all(TOTALS_CELLS)
    assert {row["quantity"] for row in totals} >= {"params", "macs", "conv params", "fc params"}
    for row in totals:
        quantity = row["quantity"].replace(" ", "_")
        expected_a, expected_b = golden_a["totals"][quantity], golden_b["totals"][quantity]
        assert (count_of(row["a"]), count_of(row["b"])) == (expected_a, expected_b), quantity
        assert count_of(row["difference"]) == expected_b - expected_a, quantity
    stages = page.locator("#aligned-table tbody tr").evaluate_all(STAGE_CELLS)
    a_params = stage_params(golden_a, [row["a"]["label"] for row in stages if row["a"]])
    b_params = stage_params(golden_b, [row["b"]["label"] for row in stages if row["b"]])
    for row in stages:
        a_side = a_params[row["a"]["label"]] if row["a"] else 0
        b_side = b_params[row["b"]["label"]] if row["b"] else 0
        if row["a"]:
            assert count_of(row["a"]["params"]) == a_side, row
        if row["b"]:
            assert count_of(row["b"]["params"]) == b_side, row
        assert count_of(row["delta"]) == b_side - a_side, row
    assert sum(count_of(row["delta"]) for row in stages) == (
        golden_b["totals"]["params"] - golden_a["totals"]["params"]
    )
    assert problems.all() == []
