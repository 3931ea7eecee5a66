"""POST /api/analyze: a user's spec, every error by layer index, name and field."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from app.web.app import create_app
from app.web.catalog import decode_spec, encode_spec
from tests.goldens import golden_csv, golden_table

from .support import error_of

TINY: dict[str, Any] = {
    "name": "tiny",
    "input": {"height": 32, "width": 32, "channels": 3},
    "layers": [
        {"kind": "conv", "name": "c1", "out_channels": 8, "kernel": 3, "padding": 1},
        {"kind": "relu"},
        {"kind": "maxpool", "kernel": 2, "stride": 2},
        {"kind": "flatten"},
        {"kind": "linear", "out_features": 10},
    ],
}


def _with_layer(index: int, layer: dict[str, Any]) -> dict[str, Any]:
    layers = list(TINY["layers"])
    layers[index] = layer
    return {**TINY, "layers": layers}


# TINY worked by hand: conv 3x3x3x8 + 8 (padded, 32x32x8), pool to 16x16x8, FC 2048x10 + 10.
TINY_ROWS = [
    ("c1", (32, 32, 8), 224),
    ("relu1", (32, 32, 8), 0),
    ("maxpool1", (16, 16, 8), 0),
    ("flatten1", (1, 1, 2048), 0),
    ("linear1", (1, 1, 10), 20490),
]


def test_a_valid_spec_gets_its_table(client: TestClient) -> None:
    response = client.post("/api/analyze", json=TINY)
    assert response.status_code == 200
    table = response.json()
    volume = ("height", "width", "channels")
    rows = [
        (row["name"], tuple(row["output"][k] for k in volume), row["params"])
        for row in table["layers"]
    ]
    assert rows == TINY_ROWS
    assert table["totals"]["params"] == 224 + 20490


@pytest.mark.parametrize("net_id", ["alexnet-2012", "vgg16-bn"])
def test_a_posted_built_in_spec_gets_the_golden_table(client: TestClient, net_id: str) -> None:
    spec = client.get(f"/api/architectures/{net_id}").json()
    response = client.post("/api/analyze", json=spec)
    assert response.status_code == 200
    assert response.json() == golden_table(net_id)
    csv = client.post("/api/analyze", params={"format": "csv"}, json=spec)
    assert (csv.status_code, csv.text) == (200, golden_csv(net_id))


def test_a_valid_spec_downloads_as_csv(client: TestClient) -> None:
    response = client.post("/api/analyze", params={"format": "csv"}, json=TINY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    lines = response.text.splitlines()
    assert lines[0].startswith("index,name,kind,in_h,in_w,in_d,out_h,out_w,out_d,weights")
    assert [line.split(",")[1] for line in lines[1:-1]] == [name for name, _, _ in TINY_ROWS]
    assert lines[-1].split(",")[11] == str(224 + 20490)


def test_every_schema_error_is_listed_by_layer_name_and_field(client: TestClient) -> None:
    spec = _with_layer(0, {"kind": "conv", "name": "c1", "out_channels": "8", "kernel": 0})
    spec["layers"][4] = {"kind": "linear", "name": "head", "out_featurs": 10}
    response = client.post("/api/analyze", json=spec)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_spec"
    located = {(i["index"], i["name"], i["field"]) for i in error["issues"]}
    assert located == {
        (0, "c1", "out_channels"),
        (0, "c1", "kernel"),
        (4, "head", "out_features"),
        (4, "head", "out_featurs"),
    }
    assert all(issue["message"] for issue in error["issues"])


def test_an_arithmetic_error_names_the_layer(client: TestClient) -> None:
    spec = _with_layer(2, {"kind": "maxpool", "kernel": 2, "padding": 2})
    response = client.post("/api/analyze", json=spec)
    assert response.status_code == 422
    [issue] = error_of(response)["issues"]
    assert (issue["index"], issue["name"], issue["field"]) == (2, "maxpool1", "padding")


def test_the_servers_limits_apply(client: TestClient) -> None:
    spec = _with_layer(0, {"kind": "conv", "out_channels": 8, "kernel": 3, "stride": 999})
    response = client.post("/api/analyze", json=spec)
    assert response.status_code == 422
    [issue] = error_of(response)["issues"]
    assert (issue["index"], issue["field"]) == (0, "stride")


@pytest.mark.parametrize(
    "body", [b'{"name": "x", "input": NaN}', b'{"a": 1e400}', b"{not json", b'{"a": "\xc3("}']
)
def test_json_that_is_not_strict_json_is_422_never_500(client: TestClient, body: bytes) -> None:
    response = client.post(
        "/api/analyze", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_json"
    assert error["issues"][0]["index"] is None


@pytest.mark.parametrize("body", [[], "spec", 3, None])
def test_json_that_is_not_a_spec_object_is_422(client: TestClient, body: object) -> None:
    response = client.post(
        "/api/analyze", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_spec"


def test_a_body_that_is_not_json_is_415(client: TestClient) -> None:
    response = client.post(
        "/api/analyze", content=b"name=x", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


@pytest.mark.parametrize("path", ["/api/analyze", "/api/analyze/check", "/custom/table"])
@pytest.mark.parametrize(
    ("content_type", "says"),
    [
        (None, "has no Content-Type"),
        ("application/x-www-form-urlencoded", "not application/x-www-form-urlencoded"),
        ("text/plain;charset=UTF-8", "not text/plain"),
        ("application/json; charset=utf-16", "in UTF-8, not charset=utf-16"),
    ],
)
def test_a_spec_needs_a_json_media_type_in_utf8(
    client: TestClient, path: str, content_type: str | None, says: str
) -> None:
    """What a page elsewhere can make a browser send without a CORS preflight is refused."""
    headers = {} if content_type is None else {"content-type": content_type}
    response = client.post(path, content=json.dumps(TINY).encode(), headers=headers)
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    assert says in error_of(response)["message"]


@pytest.mark.parametrize(
    ("codec", "name"),
    [
        ("utf-16", "UTF-16"),
        ("utf-16-le", "UTF-16"),
        ("utf-16-be", "UTF-16"),
        ("utf-32", "UTF-32"),
        ("utf-32-le", "UTF-32"),
        ("utf-32-be", "UTF-32"),
    ],
)
def test_utf16_and_utf32_bodies_are_refused_by_name(
    client: TestClient, codec: str, name: str
) -> None:
    body = json.dumps(TINY).encode(codec)
    for path in ("/api/analyze", "/api/analyze/check"):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 415
        assert error_of(response)["message"] == f"send the spec in UTF-8; this body is {name}"


def test_json_media_types_with_utf8_are_accepted(client: TestClient) -> None:
    for content_type in (
        "application/json",
        "application/json; charset=UTF-8",
        "text/json",
        "application/vnd.convatlas+json",
    ):
        headers = {"content-type": content_type}
        response = client.post("/api/analyze", content=json.dumps(TINY).encode(), headers=headers)
        assert response.status_code == 200, content_type


def test_a_body_over_the_limit_is_413() -> None:
    with TestClient(create_app(Settings(max_body_analyze=64))) as small:
        declared = small.post("/api/analyze", json=TINY)
        streamed = small.post(
            "/api/analyze",
            content=iter([json.dumps(TINY).encode()]),
            headers={"content-type": "application/json"},
        )
    for response in (declared, streamed):
        assert response.status_code == 413
        assert error_of(response)["code"] == "payload_too_large"


def test_the_editors_check_answers_200_with_the_same_problems(client: TestClient) -> None:
    spec = _with_layer(0, {"kind": "conv", "name": "c1", "out_channels": 8, "kernel": 0})
    check = client.post("/api/analyze/check", json=spec)
    strict = client.post("/api/analyze", json=spec)
    assert check.status_code == 200
    assert check.json()["valid"] is False
    assert check.json()["table"] is None
    assert check.json()["issues"] == error_of(strict)["issues"]


def test_the_editors_check_of_a_valid_spec_carries_the_table(client: TestClient) -> None:
    body = client.post("/api/analyze/check", json=TINY).json()
    table = client.post("/api/analyze", json=TINY).json()  # checked by hand above
    assert body == {"valid": True, "issues": [], "table": table, "valid_before": None}


@pytest.mark.parametrize(
    ("index", "layer"),
    [
        (2, {"kind": "maxpool", "kernel": -2}),  # a schema problem
        (2, {"kind": "maxpool", "kernel": 64}),  # the calculator's: larger than its input
        (4, {"kind": "linear", "out_features": 10, "stide": 1}),
    ],
)
def test_the_check_of_an_invalid_spec_carries_the_layers_before_the_problem(
    client: TestClient, index: int, layer: dict[str, Any]
) -> None:
    """So an editor shows the outputs above the first invalid layer and clears those below."""
    body = client.post("/api/analyze/check", json=_with_layer(index, layer)).json()
    assert body["valid"] is False
    assert min(issue["index"] for issue in body["issues"]) == index
    before = client.post("/api/analyze", json={**TINY, "layers": TINY["layers"][:index]})
    assert body["valid_before"] == before.json()
    names = [name for name, _, _ in TINY_ROWS[:index]]
    assert [row["name"] for row in body["valid_before"]["layers"]] == names


@pytest.mark.parametrize(
    "spec",
    [
        _with_layer(0, {"kind": "conv", "out_channels": 8, "kernel": 0}),  # the first layer
        {**TINY, "input": {"height": 32, "width": -5, "channels": 3}},  # not a layer's problem
        {**TINY, "layers": "conv"},
        [1, 2, 3],
    ],
)
def test_the_check_has_no_layers_before_when_nothing_before_is_valid(
    client: TestClient, spec: object
) -> None:
    body = client.post("/api/analyze/check", json=spec).json()
    assert body["valid"] is False
    assert body["valid_before"] is None


def test_a_formula_name_from_a_shared_link_downloads_defused(client: TestClient) -> None:
    """A ?spec= link carries a layer named as a formula; the editor it opens posts that spec for
    its CSV download, whose name cells start with an apostrophe (issue 14)."""
    for lead in ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20"):
        name = f'{lead}HYPERLINK("https://evil.example","x")'
        spec = {**TINY, "name": name, "layers": [{**TINY["layers"][0], "name": name}]}
        page = client.get("/custom", params={"spec": encode_spec(spec)})
        assert page.status_code == 200
        shared = decode_spec(encode_spec(spec), 1 << 20)  # what the page's editor holds
        response = client.post("/api/analyze", params={"format": "csv"}, json=shared)
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[1][1] == "'" + name, repr(lead)
