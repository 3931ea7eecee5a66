"""The server-rendered pages: real HTML tables that read without JavaScript."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from html import unescape
from typing import Any, NamedTuple

import anyio.to_thread
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.datastructures import Headers

from app.settings import Settings
from app.specs import builtin_registry
from app.web.app import create_app
from app.web.catalog import (
    comparison,
    decode_spec,
    editable_spec,
    encode_spec,
    families,
    lecture_entries,
)
from app.web.routers.pages import PAGE_CACHE_SIZE, VERDICTS, PageCache, prerender
from app.web.security import PAGE_POLICY
from tests.goldens import golden_table

from .support import error_of

IDS = builtin_registry().ids()


def _editor_rows(html: str) -> int:
    """Layers in the editor's list as the server shows them (the form is built from the spec)."""
    return len(re.findall(r'<li class="layer-edit[ "]', html))


def test_home_lists_every_net_grouped_by_family(client: TestClient) -> None:
    html = client.get("/").text
    rows = re.findall(r'<tr data-net="([^"]+)">', html)
    assert sorted(rows) == sorted(IDS)
    groups = re.findall(r'<th scope="colgroup" colspan="8">([^<]+)</th>', html)
    assert groups == list(families())
    assert rows == [net.id for nets in families().values() for net in nets]
    years = [min(net.year or 0 for net in nets) for nets in families().values()]
    assert years == sorted(years)  # families in the order they appeared
    assert 'data-src="/api/timeline"' in html


@pytest.mark.parametrize("net_id", IDS)
def test_a_net_page_has_one_table_row_per_layer(client: TestClient, net_id: str) -> None:
    html = client.get(f"/nets/{net_id}").text
    layers = golden_table(net_id)["layers"]
    names = re.findall(r'<tr id="net-layer-\d+" class="layer kind-\w+" data-layer="(\w+)">', html)
    assert names == [row["name"] for row in layers]
    assert len(re.findall(r'<tr id="net-arith-\d+" class="arith"', html)) == len(layers)
    assert f'data-src="/api/architectures/{net_id}/table"' in html
    assert '<section id="predict"' in html


def test_a_net_page_shows_the_arithmetic_and_the_lecture_verdicts(client: TestClient) -> None:
    html = client.get("/nets/alexnet-lecture").text
    layers = golden_table("alexnet-lecture")["layers"]
    conv1 = layers[0]["formula"]
    assert conv1["output"] in html
    assert conv1["params"] is not None
    assert conv1["params"] in html
    assert html.count('class="badge verdict-') >= sum(len(row["lecture"]) for row in layers)


def test_the_compare_page_defaults_to_the_lectures_comparison(client: TestClient) -> None:
    html = client.get("/compare").text
    assert '<option value="alexnet-lecture" selected>' in html
    assert '<option value="zfnet-lecture" selected>' in html
    statuses = re.findall(r'<tr class="stage status-(\w+)"', html)
    assert statuses == [row.status for row in comparison("alexnet-lecture", "zfnet-lecture").stages]
    assert '<li class="changed"><span class="key">kernel</span> 11</li>' in html
    assert '<li class="changed"><span class="key">kernel</span> 7</li>' in html


def test_the_compare_page_picks_another_b_when_a_is_the_default_b(client: TestClient) -> None:
    html = client.get("/compare", params={"a": "zfnet-lecture"}).text
    assert '<option value="zfnet-lecture" selected>' in html
    assert '<option value="alexnet-lecture" selected>' in html


def test_the_custom_page_preloads_a_built_in_spec(client: TestClient) -> None:
    html = client.get("/custom", params={"from": "vgg11"}).text
    spec = builtin_registry().get("vgg11")
    assert _editor_rows(html) == len(spec.layers)
    assert f'value="{spec.name}"' in html
    assert len(re.findall(r'<tr id="custom-layer-\d+"', html)) == len(spec.layers)


def test_a_custom_link_carries_the_spec(client: TestClient) -> None:
    spec = editable_spec(builtin_registry().get("alexnet-lecture"))
    spec["layers"][0]["kernel"] = 7
    html = client.get("/custom", params={"spec": encode_spec(spec)}).text
    assert "(227 - 7 + 2*0) / 4 + 1 = 56" in html


def test_a_custom_link_with_a_bad_layer_shows_the_problem_at_that_layer(
    client: TestClient,
) -> None:
    spec = editable_spec(builtin_registry().get("alexnet-lecture"))
    spec["layers"][3]["kernel"] = 0
    html = client.get("/custom", params={"spec": encode_spec(spec)}).text
    item = re.search(r'<li class="layer-edit invalid" data-index="(\d+)">.*?</li>', html, re.S)
    assert item is not None
    assert item.group(1) == "3"
    assert 'id="issue-3">kernel: ' in item.group(0)
    assert "No table yet" in html


def test_an_unreadable_custom_link_says_so_and_loads_the_default(client: TestClient) -> None:
    html = client.get("/custom", params={"spec": "%%%not-base64"}).text
    assert 'role="alert"' in html
    assert "not valid" in html
    assert _editor_rows(html) == len(builtin_registry().get("alexnet-lecture").layers)


def test_spec_links_round_trip() -> None:
    spec = editable_spec(builtin_registry().get("zfnet-2013"))
    assert decode_spec(encode_spec(spec), max_bytes=10_000) == spec


def test_a_spec_link_longer_than_a_posted_spec_may_be_is_refused() -> None:
    spec = editable_spec(builtin_registry().get("vgg19-bn"))
    with pytest.raises(ValueError, match="over 100 bytes"):
        decode_spec(encode_spec(spec), max_bytes=100)


def test_the_lecture_page_lists_every_figure(client: TestClient) -> None:
    html = client.get("/lecture").text
    assert len(re.findall(r'<li class="figure-card verdict-row-', html)) == len(lecture_entries())


def test_the_lecture_page_filters_by_verdict_in_the_url(client: TestClient) -> None:
    html = client.get("/lecture", params={"verdict": "differs"}).text
    rows = re.findall(r'<li class="figure-card verdict-row-(\w+)"', html)
    assert rows
    assert set(rows) == {"differs"}
    assert len(rows) == sum(1 for entry in lecture_entries() if entry.verdict == "differs")


def test_the_custom_table_fragment_is_the_same_table(client: TestClient) -> None:
    spec = editable_spec(builtin_registry().get("alexnet-lecture"))
    fragment = client.post("/custom/table", json=spec)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert len(re.findall(r'<tr id="custom-layer-\d+"', fragment.text)) == len(spec["layers"])


# --- the chart data in the page ------------------------------------------------------------

PAGE_DATA = re.compile(
    r'<div id="(?P<id>[\w-]+)" class="page-data" data-src="(?P<src>[^"]+)" '
    r'data-json="(?P<json>[^"]*)" hidden></div>'
)


def _page_data(html: str) -> dict[str, tuple[str, Any]]:
    """Each data element of a page: id -> (the API URL it names, its JSON, parsed)."""
    return {
        match["id"]: (unescape(match["src"]), json.loads(unescape(match["json"])))
        for match in PAGE_DATA.finditer(html)
    }


@pytest.mark.parametrize("net_id", IDS)
def test_a_net_page_carries_its_table_json_as_the_api_serves_it(
    client: TestClient, net_id: str
) -> None:
    data = _page_data(client.get(f"/nets/{net_id}").text)
    url, table = data["net-table-data"]
    assert url == f"/api/architectures/{net_id}/table"
    assert table == client.get(url).json()


@pytest.mark.parametrize(
    ("query", "a", "b"),
    [
        ("", "alexnet-lecture", "zfnet-lecture"),
        ("?a=vgg19-bn&b=alexnet-2012", "vgg19-bn", "alexnet-2012"),
    ],
)
def test_the_compare_page_carries_the_comparison_and_both_tables(
    client: TestClient, query: str, a: str, b: str
) -> None:
    data = _page_data(client.get(f"/compare{query}").text)
    assert set(data) == {"compare-data", "table-a-data", "table-b-data"}
    assert data["compare-data"][0] == f"/api/compare?a={a}&b={b}"
    assert data["table-a-data"][0] == f"/api/architectures/{a}/table"
    assert data["table-b-data"][0] == f"/api/architectures/{b}/table"
    for url, value in data.values():
        assert value == client.get(url).json()


def test_the_home_page_carries_the_timeline(client: TestClient) -> None:
    url, value = _page_data(client.get("/").text)["timeline-data"]
    assert url == "/api/timeline"
    assert value == client.get(url).json()


def test_page_data_cannot_end_its_element() -> None:
    """Text in the data (a note, a citation) is autoescaped: it cannot close the attribute."""
    templates = create_app().state.templates
    hostile = json.dumps({"note": '"><script>alert(1)</script>&amp;'})
    html = templates.env.from_string(
        '{% from "macros.html" import page_data %}{{ page_data("d", "/api/x", json) }}'
    ).render(json=hostile)
    assert "<script" not in html
    assert _page_data(html)["d"] == ("/api/x", json.loads(hostile))


STATIC_IMPORT = re.compile(r"""\bfrom\s*["'](/static/[^"']+)["']""")


@pytest.mark.parametrize(
    ("path", "entry"),
    [
        ("/", "home"),
        ("/nets/vgg16", "net"),
        ("/compare", "compare"),
        ("/custom", "custom"),
    ],
)
def test_chart_pages_preload_their_whole_module_graph_and_plotly(
    client: TestClient, path: str, entry: str
) -> None:
    html = client.get(path).text
    head = html.split("</head>")[0]
    preloaded = re.findall(r'<link rel="modulepreload" href="([^"]+)">', head)
    module = re.findall(r'<script type="module" src="([^"]+)"></script>', html)
    assert len(module) == 1
    assert re.fullmatch(rf"/static/js/pages/{entry}\.[0-9a-f]{{12}}\.js", module[0])
    graph, queue = [module[0]], [module[0]]
    while queue:
        response = client.get(queue.pop())
        assert response.status_code == 200
        for url in STATIC_IMPORT.findall(response.text):
            if url not in graph:
                graph.append(url)
                queue.append(url)
    assert sorted(preloaded) == sorted(graph)
    assert preloaded[0] == module[0]
    plotly = re.findall(r'<script defer src="(/static/vendor/plotly/plotly-basic[^"]+)">', html)
    assert f'<link rel="preload" as="script" href="{plotly[0]}">' in head


# --- built-in pages: rendered once, kept as bytes --------------------------------------------

BUILT_IN_PAGES = [
    "/",
    "/nets/alexnet-lecture",
    "/nets/vgg19-bn",
    "/compare",
    "/compare?a=vgg11&b=vgg19-bn",
    "/lecture",
    "/lecture?verdict=differs",
    "/custom",
    "/custom?from=zfnet-2013",
    "/practice",
    "/practice?net=vgg16-bn",
]


def _raw(client: TestClient, url: str, encoding: str, host: str | None = None) -> Raw:
    headers = {"accept-encoding": encoding, **({"host": host} if host else {})}
    with client.stream("GET", url, headers=headers) as response:
        return Raw(response.status_code, b"".join(response.iter_raw()), response.headers)


class Raw(NamedTuple):
    status: int
    body: bytes
    headers: Headers


@pytest.fixture(scope="module")
def module_app(web_settings: Settings) -> Iterator[tuple[FastAPI, TestClient]]:
    """An app of this module's own (started once: its lifespan renders every built-in page)."""
    app = create_app(web_settings)
    with TestClient(app) as test_client:
        yield app, test_client


@pytest.fixture
def fresh_app(
    module_app: tuple[FastAPI, TestClient], monkeypatch: pytest.MonkeyPatch
) -> tuple[FastAPI, TestClient]:
    """The module's app with an empty page cache of this test's own: whatever the test puts in
    it, or puts in its place, is gone after the test (the app's own, if it had one, is put back)."""
    app, _ = module_app
    monkeypatch.setattr(app.state, "page_cache", PageCache(), raising=False)
    return module_app


@pytest.mark.parametrize("url", BUILT_IN_PAGES)
@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_a_built_in_page_is_the_same_bytes_every_time_with_every_header(
    fresh_app: tuple[FastAPI, TestClient], url: str, encoding: str
) -> None:
    app, client = fresh_app
    app.state.page_cache = PageCache()
    first = _raw(client, url, encoding)
    second = _raw(client, url, encoding)
    assert first.status == second.status == 200
    assert first.body == second.body
    assert dict(first.headers) == dict(second.headers)
    headers = first.headers
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == PAGE_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["vary"] == "Accept-Encoding"
    assert headers["content-length"] == str(len(first.body))
    if encoding == "gzip":
        assert headers["content-encoding"] == "gzip"
        text = gzip.decompress(first.body)
    else:
        assert "content-encoding" not in headers
        text = first.body
    assert text == _raw(client, url, "identity").body
    assert text.startswith(b"<!doctype html>")


def test_built_in_pages_are_answered_without_a_thread(
    fresh_app: tuple[FastAPI, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once rendered, a built-in page is answered on the event loop: no threadpool hop to wait
    for behind a saturated inference."""
    _, client = fresh_app
    for url in BUILT_IN_PAGES:
        assert client.get(url).status_code == 200
    threads: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def counting(*args: Any, **kwargs: Any) -> Any:
        threads.append(args[0])
        return await run_sync(*args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    for url in BUILT_IN_PAGES:
        for encoding in ("gzip", "identity"):
            assert _raw(client, url, encoding).status == 200
    assert threads == []
    assert client.get("/custom", params={"spec": encode_spec({"layers": []})}).status_code == 200
    assert threads  # a user's spec is rendered per request, in the threadpool


def test_the_rendered_bytes_do_not_depend_on_the_request(
    fresh_app: tuple[FastAPI, TestClient],
) -> None:
    app, client = fresh_app
    for url in ("/nets/zfnet-lecture", "/compare"):
        app.state.page_cache = PageCache()
        one = _raw(client, url, "gzip")
        app.state.page_cache = PageCache()
        other = _raw(client, url, "gzip", host="convatlas.example.org:8443")
        assert one.body == other.body


def test_the_page_cache_is_bounded(fresh_app: tuple[FastAPI, TestClient]) -> None:
    app, client = fresh_app
    cache = app.state.page_cache = PageCache(maxsize=3)
    bodies = {url: _raw(client, url, "gzip").body for url in BUILT_IN_PAGES}
    assert len(cache) == 3
    assert ("custom", "zfnet-2013") in cache  # the most recent stay
    # A net page is kept per weights state (here: nothing built, in an empty repository).
    net_page = ("net", "alexnet-lecture", "alexnet-lecture:not_built::")
    assert net_page not in cache
    for url, body in bodies.items():  # an evicted page is rendered again, to the same bytes
        assert _raw(client, url, "gzip").body == body
    assert len(cache) == 3
    _raw(client, "/nets/alexnet-lecture", "gzip")
    assert net_page in cache
    n = len(IDS)
    every_built_in_page = 1 + n + n * n + 1 + len(VERDICTS) + n
    assert every_built_in_page <= PAGE_CACHE_SIZE


def test_the_page_cache_drops_the_least_recently_used() -> None:
    cache = PageCache(maxsize=2)
    cache.put(("a",), b"a")
    cache.put(("b",), b"b")
    assert cache.get(("a",)) == b"a"  # now b is the oldest
    cache.put(("c",), b"c")
    assert ("b",) not in cache
    assert cache.get(("a",)) == b"a"
    assert cache.get(("c",)) == b"c"
    assert len(cache) == 2


def test_only_built_in_pages_are_kept(fresh_app: tuple[FastAPI, TestClient]) -> None:
    app, client = fresh_app
    cache = app.state.page_cache = PageCache()
    spec = editable_spec(builtin_registry().get("alexnet-lecture"))
    assert client.get("/custom", params={"spec": encode_spec(spec)}).status_code == 200
    assert client.get("/lecture", params={"verdict": "nope"}).status_code == 200
    for url in ("/nets/lenet", "/compare?a=lenet", "/compare?b=lenet", "/custom?from=lenet"):
        assert client.get(url).status_code == 404
    assert len(cache) == 0


@pytest.mark.parametrize("url", ["/nets/lenet", "/compare?a=alexnet-lecture&b=lenet"])
def test_an_unknown_net_is_the_same_404_as_ever(client: TestClient, url: str) -> None:
    response = client.get(url, headers={"accept": "application/json"})
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "unknown_net"
    assert error["id"] == "lenet"
    assert error["known"] == IDS
    page = client.get(url, headers={"accept": "text/html"})
    assert page.status_code == 404
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == PAGE_POLICY
    assert all(f'<a href="/nets/{net_id}">' in page.text for net_id in IDS)


def test_prerender_keeps_every_built_in_page_but_the_pairs(
    fresh_app: tuple[FastAPI, TestClient],
) -> None:
    app, client = fresh_app
    cache = app.state.page_cache = PageCache()
    assert client.portal is not None  # the app's own event loop, as in the lifespan
    kept = client.portal.call(prerender, app)
    # home, the lecture's pair, the lecture and its filters; per net its page, editor, practice
    assert kept == len(cache) == 1 + 1 + 1 + len(VERDICTS) + 3 * len(IDS)
    rendered = {url: _raw(client, url, "gzip").body for url in BUILT_IN_PAGES}
    assert len(cache) == kept + 1  # only the pair of VGGs was rendered on request
    app.state.page_cache = PageCache()
    for url, body in rendered.items():
        assert _raw(client, url, "gzip").body == body


def test_the_favicon_is_linked_and_served(client: TestClient) -> None:
    html = client.get("/").text
    found = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', html)
    assert found is not None
    icon = client.get(found[1])
    assert (icon.status_code, icon.headers["content-type"]) == (200, "image/svg+xml")
    assert icon.text.lstrip().startswith("<svg")
    moved = client.get("/favicon.ico", follow_redirects=False)
    assert (moved.status_code, moved.headers["location"]) == (301, found[1])


def test_the_api_docs_link_back_to_the_site(client: TestClient) -> None:
    html = client.get("/docs").text
    nav = re.search(r'<nav aria-label="ConvAtlas".*?</nav>', html, re.S)
    assert nav is not None
    assert {'href="/"', 'href="/lecture"', 'href="/compare"'} <= set(
        re.findall(r'href="[^"]*"', nav[0])
    )
    assert html.index("<nav") < html.index('<div id="swagger-ui">')


def test_a_small_nets_macs_read_with_their_own_prefix(client: TestClient) -> None:
    """LeNet-sized: the custom page's card said "MACs 0.00 G"; it reads 416.52 K, exact below."""
    spec = {
        "name": "LeNet-5",
        "input": {"height": 32, "width": 32, "channels": 1},
        "layers": [
            {"kind": "conv", "out_channels": 6, "kernel": 5},
            {"kind": "maxpool", "kernel": 2},
            {"kind": "conv", "out_channels": 16, "kernel": 5},
            {"kind": "maxpool", "kernel": 2},
            {"kind": "flatten"},
            {"kind": "linear", "out_features": 120},
            {"kind": "linear", "out_features": 84},
            {"kind": "linear", "out_features": 10},
        ],
    }
    html = client.post("/custom/table", json=spec).text
    card = re.search(r"<dt>MACs per image</dt><dd>(.*?)</dd><dd class=\"exact\">([\d,]+)", html)
    assert card is not None
    assert card[1] == '<data value="416520" title="416,520">416.52 K</data>'
    assert card[2] == "416,520"


def test_the_number_filters_are_the_one_formatter() -> None:
    from markupsafe import Markup

    from app.web.templating import si, signed_si

    assert si(642_000) == Markup('<data value="642000" title="642,000">642 K</data>')
    assert signed_si(-1_500_000) == Markup(
        '<data value="-1500000" title="-1,500,000">-1.5 M</data>'
    )
    assert signed_si(0) == Markup('<data value="0" title="0">0</data>')


def test_a_lecture_nets_rows_say_which_outputs_the_lecture_skips(client: TestClient) -> None:
    html = client.get("/nets/alexnet-lecture").text
    cells = re.findall(
        r'<tr id="net-layer-\d+" class="layer kind-\w+" data-layer="(\w+)">.*?'
        r'<td class="lecture-cell"[^>]*>(.*?)</td>',
        html,
        re.S,
    )
    skipped = [name for name, cell in cells if 'class="not-stated"' in cell]
    unstated = golden_table("alexnet-lecture")["lecture_unstated"]
    assert skipped == [item["name"] for item in unstated]
    assert skipped == ["pool2", "conv3", "conv4", "conv5"]
    assert 'class="not-stated"' not in client.get("/nets/vgg16").text  # no walk-through of VGG
