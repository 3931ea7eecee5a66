"""The server-rendered pages: real HTML tables that read without JavaScript."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.core.calculator import builtin_table
from app.specs import builtin_registry
from app.web.catalog import (
    comparison,
    decode_spec,
    editable_spec,
    encode_spec,
    families,
    lecture_entries,
)

IDS = builtin_registry().ids()


def _editor_rows(html: str) -> int:
    """Layers in the editor's list (the <template> for new rows comes after it)."""
    return html.split('<template id="layer-template">')[0].count('class="layer-json"')


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
    table = builtin_table(net_id)
    assert len(re.findall(r'<tr id="net-layer-\d+" class="layer', html)) == len(table.layers)
    assert len(re.findall(r'<tr id="net-arith-\d+" class="arith"', html)) == len(table.layers)
    assert f'data-table-url="/api/architectures/{net_id}/table"' in html
    assert '<section id="predict"' in html


def test_a_net_page_shows_the_arithmetic_and_the_lecture_verdicts(client: TestClient) -> None:
    html = client.get("/nets/alexnet-lecture").text
    conv1 = builtin_table("alexnet-lecture").layers[0]
    assert conv1.formula.output in html
    assert conv1.formula.params is not None
    assert conv1.formula.params in html
    assert html.count('class="badge verdict-') >= sum(
        len(row.lecture) for row in builtin_table("alexnet-lecture").layers
    )


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
    assert len(re.findall(r'<tr class="verdict-row-', html)) == len(lecture_entries())


def test_the_lecture_page_filters_by_verdict_in_the_url(client: TestClient) -> None:
    html = client.get("/lecture", params={"verdict": "differs"}).text
    rows = re.findall(r'<tr class="verdict-row-(\w+)"', html)
    assert rows
    assert set(rows) == {"differs"}
    assert len(rows) == sum(1 for entry in lecture_entries() if entry.verdict == "differs")


def test_the_custom_table_fragment_is_the_same_table(client: TestClient) -> None:
    spec = editable_spec(builtin_registry().get("alexnet-lecture"))
    fragment = client.post("/custom/table", json=spec)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert len(re.findall(r'<tr id="custom-layer-\d+"', fragment.text)) == len(spec["layers"])
