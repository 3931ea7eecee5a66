"""GET and POST /api/whatif, and the what-if on the net pages: the lecture's preset exactly, the
state as a shareable URL and an editor link, and the error envelope for bad input."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from app.core.calculator import analyze
from app.web.catalog import decode_spec

from .support import error_of

PRESET = "/api/whatif?net=alexnet-lecture&preset=no-shrinkage"
TINY: dict[str, Any] = {
    "name": "tiny",
    "input": {"height": 32, "width": 32, "channels": 3},
    "layers": [
        {"kind": "conv", "name": "c1", "out_channels": 8, "kernel": 3, "padding": 1},
        {"kind": "relu"},
        {"kind": "maxpool", "name": "p1", "kernel": 2, "stride": 2},
        {"kind": "flatten"},
        {"kind": "linear", "name": "fc1", "out_features": 64},
        {"kind": "linear", "name": "fc2", "out_features": 10},
    ],
}


def test_the_lecture_preset_over_the_api_is_exact(client: TestClient) -> None:
    response = client.get(PRESET)
    assert response.status_code == 200
    body = response.json()
    assert body["headline"] == {
        "layer": "fc6",
        "weights": 41_943_040_000,
        "weights_text": "about 41.9 billion",
        "fp32_bytes": 167_772_160_000,
        "fp32_text": "about 168 GB at fp32",
        "formula": "10,240,000*4,096 weights + 4,096 biases = 41,943,040,000 + 4,096"
        " = 41,943,044,096 params",
    }
    fc6 = next(row for row in body["table"]["layers"] if row["name"] == "fc6")
    assert fc6["input"] == {"height": 1, "width": 1, "channels": 200 * 200 * 256}
    totals = {t["quantity"]: t for t in body["comparison"]["totals"]}
    assert totals["params"]["a"] == 28_823_912  # AlexNet as taught, exactly
    assert totals["params"]["b"] == 41_967_669_608
    assert body["share_query"] == (
        "remove_pools=pool1&remove_pools=pool2&remove_pools=pool3&conv1_stride=1&input_side=220"
    )


def test_the_share_query_gives_the_same_what_if(client: TestClient) -> None:
    first = client.get(PRESET).json()
    again = client.get(f"/api/whatif?net=alexnet-lecture&{first['share_query']}").json()
    assert again == first


def test_the_editor_link_carries_the_edited_spec(client: TestClient) -> None:
    body = client.get("/api/whatif?net=alexnet-lecture&conv1_kernel=7&conv1_stride=2").json()
    url = urlsplit(body["editor_url"])
    assert url.path == "/custom"
    raw = decode_spec(parse_qs(url.query)["spec"][0], 1 << 20)
    assert analyze(raw).totals == analyze(body["spec"]).totals
    conv1 = next(layer for layer in raw["layers"] if layer["kind"] == "conv")  # type: ignore[index]
    assert (conv1["kernel"], conv1["stride"]) == (7, 2)
    page = client.get(body["editor_url"])
    assert page.status_code == 200
    assert "AlexNet (as taught), what-if" in page.text


def test_post_takes_a_users_spec(client: TestClient) -> None:
    response = client.post("/api/whatif", json={"spec": TINY, "edits": {"gap": True}})
    assert response.status_code == 200
    rows = response.json()["table"]["layers"]
    assert [row["name"] for row in rows] == ["c1", "relu1", "p1", "gap", "flatten1", "fc2"]
    assert rows[-1]["weights"] == 8 * 10  # one average per channel into fc2
    preset = client.post("/api/whatif", json={"net": "alexnet-lecture", "preset": "no-shrinkage"})
    assert preset.json() == client.get(PRESET).json()


@pytest.mark.parametrize(
    ("query", "status", "code", "words"),
    [
        ("net=nope", 404, "unknown_net", "unknown net 'nope'"),
        ("net=vgg16&remove_pools=pool9", 422, "invalid_whatif", "'pool9' is not a pooling layer"),
        ("net=vgg16&conv1_kernel=seven", 422, "invalid_whatif", "conv1_kernel"),
        ("net=vgg16&conv1_stride=0", 422, "invalid_whatif", "conv1_stride"),
        ("net=vgg16&conv1_kernel=40", 422, "invalid_whatif", "over the limit of 31"),
        ("net=alexnet-lecture&input_side=40", 422, "invalid_whatif", "kernel"),
        ("net=vgg16&preset=no-shrinkage", 422, "invalid_whatif", "no preset 'no-shrinkage'"),
        ("net=vgg16&gap=maybe", 422, "invalid_whatif", "gap"),
        ("", 422, None, "net"),
    ],
)
def test_bad_input_gets_the_envelope(
    client: TestClient, query: str, status: int, code: str | None, words: str
) -> None:
    response = client.get(f"/api/whatif?{query}")
    assert response.status_code == status
    error = error_of(response)
    if code:
        assert error["code"] == code
    assert words in error["message"] or words in str(error.get("issues"))


def test_post_refuses_both_or_neither(client: TestClient) -> None:
    for body in ({}, {"net": "vgg16", "spec": TINY}):
        response = client.post("/api/whatif", json=body)
        assert response.status_code == 422
        assert "either `net` or `spec`" in error_of(response)["message"]
    response = client.post("/api/whatif", json={"spec": {"name": "x"}})
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_spec"


def test_the_net_page_shows_the_preset_beside_the_original(client: TestClient) -> None:
    page = client.get("/nets/alexnet-lecture?preset=no-shrinkage")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", page.text)
    assert "<b>41,943,040,000</b> weights (about 41.9 billion; about 168 GB at fp32" in text
    assert 'id="whatif-aligned"' in text
    assert 'id="whatif-totals"' in text
    assert 'name="remove_pools" value="pool1" checked' in text
    assert 'name="input_side" min="1" max="4096" inputmode="numeric" value="220"' in text
    plain = client.get("/nets/alexnet-lecture")
    assert 'id="whatif-form"' in plain.text
    assert 'id="whatif-results"' not in plain.text


def test_a_bad_state_on_the_page_is_said_at_the_form(client: TestClient) -> None:
    page = client.get("/nets/vgg16?conv1_kernel=99")
    assert page.status_code == 200
    assert 'id="whatif-error"' in page.text
    assert "over the limit of 31" in page.text
    fragment = client.get("/nets/vgg16/whatif?conv1_kernel=99")
    assert fragment.status_code == 200  # the page shows it at the form; the API says 422
    assert 'role="alert" id="whatif-error"' in fragment.text
    assert "over the limit of 31" in fragment.text


def test_the_fragment_is_the_pages_results(client: TestClient) -> None:
    fragment = client.get("/nets/vgg16/whatif?gap=1")
    assert fragment.status_code == 200
    page = client.get("/nets/vgg16?gap=1")
    results = re.search(r'<div class="whatif-results".*?</details>', fragment.text, re.S)
    assert results
    assert results.group(0) in page.text


def test_the_what_if_is_documented(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"get", "post"} <= set(schema["paths"]["/api/whatif"])
    assert schema["paths"]["/api/whatif"]["get"]["tags"] == ["what-if"]
