"""Pages: bytes on the wire and time to the first chart, headless Chromium, cold cache.

Every visit is a new browser context (an empty cache) with the cache also disabled through the
DevTools protocol. Bytes are Chromium's own count of what came over the wire
(``Network.loadingFinished.encodedDataLength``: headers plus the compressed body). The first chart
is the moment, in ``performance.now()`` (milliseconds since navigation started), of the animation
frame after Plotly first put an SVG into a chart element. Visits alternate between the pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Browser, sync_playwright

from scripts.bench.common import Context
from scripts.bench.report import Section, target
from scripts.bench.server import Server, serve
from scripts.bench.stats import spread

PAGES = {
    "net page (alexnet-lecture)": "/nets/alexnet-lecture",
    "net page (vgg19-bn)": "/nets/vgg19-bn",
    "compare page": "/compare",
}
NET_PAGE_BYTES_WANTED = 700 * 1000  # "700 KB"
FIRST_CHART_WANTED_MS = 500.0
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
HASHED = re.compile(r"\.[0-9a-f]{12}\.[a-z0-9]+$")
YEAR_S = 365 * 24 * 3600
FIRST_CHART_ATTRIBUTE = "data-bench-first-chart"
# Chart data: the pages carry it in their HTML (so it is in with the document); an /api/ answer
# other than live inference's model status would be chart data fetched after the fact.
MILESTONES = """(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const api = performance.getEntriesByType('resource').filter(
    (e) => e.name.includes('/api/') && !e.name.includes('/api/predict'));
  return {
    dom: nav.domContentLoadedEventEnd,
    load: nav.loadEventEnd,
    data: Math.max(nav.responseEnd, ...api.map((e) => e.responseEnd)),
  };
})()"""
# Records when Plotly first drew (the frame after the first chart SVG appeared) in an attribute:
# waiting for a selector needs no eval, which the pages' Content-Security-Policy forbids.
FIRST_CHART_PROBE = """
(() => {
  const seen = () => document.querySelector('.js-plotly-plot .main-svg');
  const mark = () => requestAnimationFrame(() => {
    document.documentElement.dataset.benchFirstChart = String(performance.now());
  });
  const observer = new MutationObserver(() => {
    if (seen()) { observer.disconnect(); mark(); }
  });
  observer.observe(document, { childList: true, subtree: true });
})();
"""


@dataclass
class Visits:
    bytes: list[float] = field(default_factory=list)
    first_chart_ms: list[float] = field(default_factory=list)
    load_ms: list[float] = field(default_factory=list)
    dom_ready_ms: list[float] = field(default_factory=list)
    data_ms: list[float] = field(default_factory=list)  # the chart data fully in
    requests: list[float] = field(default_factory=list)
    static: dict[str, str] = field(default_factory=dict)  # URL -> Cache-Control


def run(context: Context) -> Section:
    section = Section("pages", "Pages in headless Chromium")
    if not context.chromium.exists():
        section.add(
            f"Not measured: no Chromium at {context.chromium} (`make browser` installs it)."
        )
        section.targets.append(target("pages", "measured", "no Chromium", None))
        return section
    rounds = 1 if context.quick else 7
    visits = {name: Visits() for name in PAGES}
    with serve(context.models_root) as server, sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(context.chromium), headless=True, args=CHROMIUM_ARGS
        )
        _visit(browser, server, "/nets/alexnet-lecture", Visits())  # warm the server, not us
        for index in range(rounds):
            names = list(PAGES) if index % 2 == 0 else list(PAGES)[::-1]
            for name in names:
                _visit(browser, server, PAGES[name], visits[name])
        browser.close()
    _describe(section, visits, rounds)
    _judge(section, visits)
    section.commands.append("python -m scripts.bench --only pages")
    return section


def _visit(browser: Browser, server: Server, path: str, visits: Visits) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    wire: list[float] = []
    cdp.on("Network.loadingFinished", lambda event: wire.append(event["encodedDataLength"]))
    cdp.on("Network.responseReceived", lambda event: _note_static(event, visits))
    page.add_init_script(FIRST_CHART_PROBE)
    page.goto(server.url + path, wait_until="load")
    page.wait_for_selector(f"html[{FIRST_CHART_ATTRIBUTE}]", state="attached", timeout=15_000)
    page.wait_for_load_state("networkidle")
    drawn = page.get_attribute("html", FIRST_CHART_ATTRIBUTE)
    visits.first_chart_ms.append(float(drawn or "nan"))
    milestones = page.evaluate(MILESTONES)
    visits.load_ms.append(float(milestones["load"]))
    visits.dom_ready_ms.append(float(milestones["dom"]))
    visits.data_ms.append(float(milestones["data"]))
    visits.bytes.append(sum(wire))
    visits.requests.append(len(wire))
    context.close()


def _note_static(event: dict[str, Any], visits: Visits) -> None:
    response = event["response"]
    url: str = response["url"]
    if "/static/" in url:
        headers = {name.lower(): value for name, value in response["headers"].items()}
        visits.static[url] = headers.get("cache-control", "")


def _immutable(url: str, cache_control: str) -> bool:
    path = url.split("?", 1)[0]
    max_age = re.search(r"max-age=(\d+)", cache_control)
    return (
        bool(HASHED.search(path))
        and "immutable" in cache_control
        and max_age is not None
        and int(max_age.group(1)) >= YEAR_S
    )


def _describe(section: Section, visits: dict[str, Visits], rounds: int) -> None:
    section.add(
        f"Chromium (Playwright), 1440x900, {rounds} cold visits per page in alternating order, "
        "each in a fresh browser context with the cache disabled. Bytes: everything the page "
        "loaded (HTML, CSS, JS, JSON, favicon) as it crossed the wire, headers included, gzip as "
        "the server sent it. First chart: ms from navigation start to the frame after Plotly "
        "drew the first chart; the other milestones are medians from the Navigation and "
        "Resource Timing APIs (chart data in: the page itself, which carries its charts' JSON, "
        "or the last chart-data `/api/` answer, if a page fetched any, fully received).",
        "",
    )
    rows = []
    for name, v in visits.items():
        immutable = sum(_immutable(url, cc) for url, cc in v.static.items())
        rows.append(
            (
                name,
                f"{spread(v.bytes).median / 1000:.1f} KB",
                f"{spread(v.requests).median:.0f}",
                f"{spread(v.dom_ready_ms).median:.0f}",
                f"{spread(v.load_ms).median:.0f}",
                f"{spread(v.data_ms).median:.0f}",
                spread(v.first_chart_ms).text(0),
                f"{immutable} of {len(v.static)}",
            )
        )
    section.table(
        (
            "page",
            "bytes on the wire",
            "requests",
            "DOMContentLoaded ms",
            "load event ms",
            "chart data in ms",
            "first chart ms",
            "static files hashed + immutable",
        ),
        rows,
    )


def _judge(section: Section, visits: dict[str, Visits]) -> None:
    for name, v in visits.items():
        size = spread(v.bytes).median
        chart = spread(v.first_chart_ms)
        if name.startswith("net page"):
            section.targets.append(
                target(
                    f"{name}: first visit, compressed",
                    f"<= {NET_PAGE_BYTES_WANTED / 1000:.0f} KB",
                    f"{size / 1000:.1f} KB",
                    size <= NET_PAGE_BYTES_WANTED,
                )
            )
        section.targets.append(
            target(
                f"{name}: first chart drawn",
                f"<= {FIRST_CHART_WANTED_MS:.0f} ms after navigation",
                f"{chart.median:.0f} ms (IQR {chart.q1:.0f}-{chart.q3:.0f})",
                chart.median <= FIRST_CHART_WANTED_MS,
            )
        )
    static = {url: cc for v in visits.values() for url, cc in v.static.items()}
    good = sum(_immutable(url, cc) for url, cc in static.items())
    section.targets.append(
        target(
            "static files: content-hash URL, Cache-Control immutable, max-age >= 1 year",
            "all",
            f"{good} of {len(static)}",
            good == len(static) and bool(static),
        )
    )
