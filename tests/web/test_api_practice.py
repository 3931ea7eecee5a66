"""POST /api/practice/check and GET /api/practice/slips over real HTTP (a uvicorn server, as
`make run` starts it), and the practice page's route through the app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.core.calculator import builtin_table
from app.core.practice import catalogue
from app.web.catalog import encode_spec
from scripts.liveserver import LiveServer, server_env, serving

from .support import error_of

CHECK = "/api/practice/check"
TINY: dict[str, Any] = {
    "name": "tiny",
    "input": {"height": 32, "width": 32, "channels": 3},
    "layers": [
        {"kind": "conv", "name": "c1", "out_channels": 8, "kernel": 3, "padding": 1},
        {"kind": "relu"},
        {"kind": "maxpool", "kernel": 2, "stride": 2},
        {"kind": "flatten"},
        {"kind": "linear", "name": "head", "out_features": 10},
    ],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Practice needs no model: the server runs on an empty repository."""
    with serving(server_env(tmp_path_factory.mktemp("no-models"))) as live:
        yield live


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def _check(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post(CHECK, json=body)


def test_the_issues_example_is_forgot_bias(http: httpx.Client) -> None:
    answer = _check(http, net="alexnet-lecture", layer="conv1", quantity="params", answer=34_848)
    assert answer.status_code == 200
    body = answer.json()
    assert body == {
        "correct": False,
        "exact": 34_944,
        "slip": "forgot_bias",
        "slips": ["forgot_bias"],
        "explanation": "You counted the weights but not the biases: one per filter, 96 in all.",
        "formula": builtin_table("alexnet-lecture").layers[0].formula.params,
    }


@pytest.mark.parametrize(
    "answer", [[55, 55, 96], {"width": 55, "height": 55, "depth": 96}, [55.0, 55.0, 96.0]]
)
def test_an_output_answers_as_a_list_or_an_object(http: httpx.Client, answer: Any) -> None:
    body = _check(http, net="alexnet-lecture", layer="conv1", quantity="output", answer=answer)
    assert body.json()["correct"] is True
    assert body.json()["exact"] == [55, 55, 96]
    assert body.json()["slips"] == []


def test_an_unrounded_output_names_no_floor(http: httpx.Client) -> None:
    # zfnet-2013's conv1: (224 - 7 + 2*1) / 2 + 1 = 110.5, rounded down to 110
    answer = [110.5, 110.5, 96]
    body = _check(http, net="zfnet-2013", layer="conv1", quantity="output", answer=answer).json()
    assert (body["correct"], body["slip"], body["exact"]) == (False, "no_floor", [110, 110, 96])
    assert "rounds it down" in body["explanation"]


def test_after_flatten_one_number_is_the_vector(http: httpx.Client) -> None:
    right = _check(http, net="alexnet-lecture", layer="fc6", quantity="output", answer=4096)
    assert right.json()["correct"] is True
    assert right.json()["exact"] == [1, 1, 4096]
    spatial = _check(http, net="alexnet-lecture", layer="conv1", quantity="output", answer=55)
    assert spatial.status_code == 422
    error = error_of(spatial)
    assert error["code"] == "invalid_answer"
    assert error["issues"] == [
        {"location": "body.answer", "message": "this layer's output is a volume: give [W, H, D]"}
    ]


def test_a_custom_spec_is_practised_like_a_built_in(http: httpx.Client) -> None:
    body = _check(http, spec=TINY, layer="c1", quantity="output", answer=[30, 30, 8]).json()
    assert (body["correct"], body["slip"], body["exact"]) == (False, "forgot_padding", [32, 32, 8])
    head = _check(http, spec=TINY, layer="head", quantity="params", answer=16 * 16 * 8 * 10).json()
    assert head["slip"] == "forgot_bias"  # 2,048 inputs x 10 units, without the 10 biases


def test_the_slips_are_listed(http: httpx.Client) -> None:
    answer = http.get("/api/practice/slips")
    assert answer.status_code == 200
    assert answer.json() == [slip.model_dump() for slip in catalogue()]
    assert {"forgot_bias", "forgot_input_depth", "no_floor"} <= {s["code"] for s in answer.json()}


BAD: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("no net", {"layer": "conv1", "quantity": "output", "answer": [1, 1, 1]}, 422,
     "invalid_request", "give either `net`"),
    ("both", {"net": "alexnet-lecture", "spec": TINY, "layer": "conv1", "quantity": "params",
              "answer": 1}, 422, "invalid_request", "give either `net`"),
    ("unknown net", {"net": "resnet50", "layer": "conv1", "quantity": "params", "answer": 1},
     404, "unknown_net", "unknown net 'resnet50'"),
    ("unknown layer", {"net": "alexnet-lecture", "layer": "conv9", "quantity": "params",
                       "answer": 1}, 422, "unknown_layer", "no layer named 'conv9'"),
    ("bad quantity", {"net": "alexnet-lecture", "layer": "conv1", "quantity": "macs",
                      "answer": 1}, 422, "invalid_request", "body.quantity"),
    ("two numbers", {"net": "alexnet-lecture", "layer": "conv1", "quantity": "output",
                     "answer": [55, 55]}, 422, "invalid_request", "give [W, H, D]"),
    ("a string", {"net": "alexnet-lecture", "layer": "conv1", "quantity": "params",
                  "answer": "34944"}, 422, "invalid_request", "give [W, H, D]"),
    ("a boolean", {"net": "alexnet-lecture", "layer": "conv1", "quantity": "params",
                   "answer": True}, 422, "invalid_request", "give [W, H, D]"),
    ("negative", {"net": "alexnet-lecture", "layer": "conv1", "quantity": "params",
                  "answer": -1}, 422, "invalid_request", "from 0 to 10^15"),
    ("huge", {"net": "alexnet-lecture", "layer": "conv1", "quantity": "params",
              "answer": 10**30}, 422, "invalid_request", "from 0 to 10^15"),
    ("volume for params", {"net": "alexnet-lecture", "layer": "conv1", "quantity": "params",
                           "answer": [1, 2, 3]}, 422, "invalid_answer", "one number"),
    ("unknown key", {"net": "alexnet-lecture", "layer": "conv1", "quantity": "params",
                     "answer": 1, "hint": True}, 422, "invalid_request", "body.hint"),
    ("bad spec", {"spec": {**TINY, "layers": [{"kind": "conv", "out_channels": 8, "kernel": 0}]},
                  "layer": "conv1", "quantity": "params", "answer": 1}, 422, "invalid_spec",
     "the spec has 1 problem"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
def test_bad_input_gets_the_envelope_naming_the_problem(
    http: httpx.Client, body: dict[str, Any], status: int, code: str, says: str
) -> None:
    answer = http.post(CHECK, json=body)
    assert answer.status_code == status, answer.text
    error = error_of(answer)
    assert error["code"] == code
    assert says in answer.text


def test_the_unknown_layer_error_lists_the_layers(http: httpx.Client) -> None:
    body = {"net": "alexnet-lecture", "layer": "conv9", "quantity": "params", "answer": 1}
    error = error_of(http.post(CHECK, json=body))
    assert error["known"] == [row.name for row in builtin_table("alexnet-lecture").layers]


def test_hostile_text_is_never_echoed(http: httpx.Client) -> None:
    layer = "<script>alert(1)</script>"
    answer = http.post(
        CHECK, json={"net": "alexnet-lecture", "layer": layer, "quantity": "params", "answer": 1}
    )
    assert answer.status_code == 422
    assert "<script>" not in answer.text
    assert error_of(answer)["message"].startswith("no such layer;")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"net": "alexnet-lecture", "layer": "conv1", "quantity": "params", "answer": NaN}',
        b'{"net": "alexnet-lecture", "layer": "conv1", "quantity": "params", "answer": 1e999}',
        b'{"net": "alexnet-lecture", "layer": "conv1", "quantity": "params",',
        b"[" * 50_000 + b"]" * 50_000,
    ],
    ids=["NaN", "infinite", "cut short", "nested too deep"],
)
def test_malformed_json_is_a_4xx(http: httpx.Client, raw: bytes) -> None:
    answer = http.post(CHECK, content=raw, headers={"Content-Type": "application/json"})
    assert answer.status_code in {400, 422}, answer.text
    error_of(answer)


def test_the_check_is_documented_in_openapi(http: httpx.Client) -> None:
    schema = http.get("/openapi.json").json()
    operation = schema["paths"][CHECK]["post"]
    assert {"200", "404", "422"} <= set(operation["responses"])
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PracticeCheck"}
    fields = schema["components"]["schemas"]["PracticeCheck"]["properties"]
    assert {"net", "spec", "layer", "quantity", "answer"} == set(fields)
    assert "[W, H, D]" in fields["answer"]["description"]
    assert "/api/practice/slips" in schema["paths"]


# -- the page, through the app ---------------------------------------------------------------


def test_the_practice_page_defaults_to_alexnet_lecture(client: TestClient) -> None:
    page = client.get("/practice")
    assert page.status_code == 200
    assert "Practice: AlexNet (as taught)" in page.text
    for row in builtin_table("alexnet-lecture").layers:
        assert f'<span class="step-name">{row.name}</span>' in page.text


def test_the_practice_page_takes_any_net_and_404s_an_unknown_one(client: TestClient) -> None:
    assert "Practice: VGG-16" in client.get("/practice?net=vgg16").text
    missing = client.get("/practice?net=resnet50", headers={"Accept": "text/html"})
    assert missing.status_code == 404
    assert "vgg16" in missing.text  # the known nets, as links


def test_the_practice_page_takes_a_spec_as_the_editor_links_it(client: TestClient) -> None:
    page = client.get(f"/practice?spec={encode_spec(TINY)}")
    assert page.status_code == 200
    assert "Practice: tiny" in page.text
    assert '<span class="step-name">head</span>' in page.text
    assert f'href="/custom?spec={encode_spec(TINY)}"' in page.text


def test_a_spec_that_cannot_be_practised_says_why(client: TestClient) -> None:
    small = {"height": 8, "width": 8, "channels": 3}
    broken = {**TINY, "input": small, "layers": [{"kind": "conv", "out_channels": 8, "kernel": 11}]}
    page = client.get(f"/practice?spec={encode_spec(broken)}")
    assert page.status_code == 200
    assert "cannot be practised" in page.text
    assert "larger than the padded input" in page.text
    assert 'id="practice-data"' not in page.text
    garbled = client.get("/practice?spec=bm90IGpzb24")  # "not json"
    assert "the link&#39;s spec is not valid JSON" in garbled.text


def test_net_and_custom_pages_link_to_practice(client: TestClient) -> None:
    assert 'href="/practice?net=zfnet-lecture"' in client.get("/nets/zfnet-lecture").text
    custom = client.get("/custom?from=vgg11").text
    assert 'href="/practice?spec=' in custom
    assert "data-practice-link" in custom


def test_practice_pages_are_prerendered(client: TestClient) -> None:
    from app.web.routers.pages import page_cache

    assert ("practice", "alexnet-lecture") in page_cache(client.app)  # type: ignore[arg-type]
