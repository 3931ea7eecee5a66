"""Extreme numbers in every numeric field of a spec and of its lecture figures: 200 or 422 on
every route that analyses a spec, never 500, and no answer over its bound (issue 14).

The template below holds one layer of every kind with every field set, a figure of each shape on
a layer and on the whole net, and the spec's own metadata; the property test replaces any of
its numbers with extremes (0, negatives, 2^63, 10^400, Python's 4,300-digit limit, the largest
and smallest floats) and posts the result to /api/analyze, /api/analyze/check, /custom/table and
GET /custom?spec=.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.limits import SpecLimits
from app.specs.models import LAYER_KINDS
from app.web.catalog import encode_spec

from .support import error_of

LIMITS = SpecLimits()
FIGURE_LAYER = 0
TEMPLATE: dict[str, Any] = {
    "name": "extremes",
    "year": 2012,
    "top5_error": {"value": 16.4, "source": "a paper"},
    "weights": {"url": "https://example.org/w.pth", "acc1": 56.5, "acc5": 79.1},
    "input": {"height": 32, "width": 32, "channels": 3},
    "lecture": [
        {
            "ref": 1,
            "says": "61 million",
            "quantity": "total_params",
            "value": 61.1,
            "unit": "million",
            "decimals": 1,
        },
        {"ref": 2, "says": "depth", "quantity": "depth", "value": 2},
    ],
    "layers": [
        {
            "kind": "conv",
            "out_channels": 8,
            "kernel": 3,
            "stride": 1,
            "padding": 1,
            "dilation": 1,
            "groups": 1,
            "lecture": [
                {"ref": 3, "says": "3x3x3x8", "quantity": "weights", "factors": [3, 3, 3, 8]},
                {"ref": 4, "says": "224", "quantity": "params", "value": 224},
                {
                    "ref": 5,
                    "says": "0.2 thousand",
                    "quantity": "params",
                    "value": 0.000224,
                    "unit": "million",
                    "decimals": 6,
                },
                {"ref": 6, "says": "32x32x8", "quantity": "output", "value": [32, 32, 8]},
                {"ref": 7, "says": "kernel 3", "quantity": "kernel", "value": 3},
            ],
        },
        {"kind": "lrn", "size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0},
        {"kind": "batchnorm", "eps": 1e-5},
        {"kind": "relu"},
        {"kind": "dropout", "p": 0.5},
        {"kind": "maxpool", "kernel": 2, "stride": 2, "padding": 0},
        {"kind": "avgpool", "kernel": 1, "stride": 1, "padding": 0},
        {"kind": "adaptiveavgpool", "output_size": 2},
        {"kind": "flatten"},
        {"kind": "linear", "out_features": 10},
        {"kind": "softmax"},
    ],
}
EXTREME_INTS = [0, -1, 1, 2**31, 2**63, -(2**63), 10**15 + 1, 10**400, -(10**400), 10**4299]
EXTREME_FLOATS = [0.0, -0.0, 5e-324, -5e-324, 1e308, -1.7976931348623157e308, 0.5, 1e-300, 1e16]
EXTREMES = st.one_of(
    st.sampled_from(EXTREME_INTS),
    st.sampled_from(EXTREME_FLOATS),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.sampled_from(EXTREME_INTS), min_size=0, max_size=20),
)


def _numeric_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Where the template holds a number (a list of numbers counts once, as itself)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numeric_paths(item, (*path, key))
    elif isinstance(value, list) and value and all(isinstance(x, int) for x in value):
        yield path
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _numeric_paths(item, (*path, position))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield path


NUMERIC_PATHS = sorted(_numeric_paths(TEMPLATE), key=str)


def _replaced(changes: dict[tuple[Any, ...], Any]) -> dict[str, Any]:
    spec = copy.deepcopy(TEMPLATE)
    for path, value in changes.items():
        owner = spec
        for step in path[:-1]:
            owner = owner[step]
        owner[path[-1]] = value
    return spec


def test_the_template_covers_every_layer_kind_and_is_valid(client: TestClient) -> None:
    assert {layer["kind"] for layer in TEMPLATE["layers"]} == set(LAYER_KINDS)
    assert client.post("/api/analyze", json=TEMPLATE).status_code == 200
    figure_fields = {path[-1] for path in NUMERIC_PATHS if "lecture" in path}
    assert figure_fields == {"ref", "value", "factors", "decimals"}


def _post(client: TestClient, path: str, body: bytes) -> Any:
    return client.post(path, content=body, headers={"content-type": "application/json"})


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(NUMERIC_PATHS), EXTREMES, min_size=1, max_size=4))
def test_extreme_numbers_get_200_or_422_never_500(
    client: TestClient, changes: dict[tuple[Any, ...], Any]
) -> None:
    spec = _replaced(changes)
    body = json.dumps(spec).encode()
    strict = _post(client, "/api/analyze", body)
    assert strict.status_code in (200, 422), strict.text[:300]
    assert len(strict.content) <= LIMITS.max_answer_bytes
    if strict.status_code == 422:
        assert error_of(strict)["code"] == "invalid_spec"
        assert all(issue["field"] or issue["message"] for issue in error_of(strict)["issues"])
    check = _post(client, "/api/analyze/check", body)
    assert check.status_code == 200, check.text[:300]
    assert check.json()["valid"] is (strict.status_code == 200)
    fragment = _post(client, "/custom/table", body)
    assert fragment.status_code == strict.status_code, fragment.text[:300]
    page = client.get("/custom", params={"spec": encode_spec(spec)})
    assert page.status_code == 200, page.text[:300]


def _issue_fields(response: Any) -> list[tuple[Any, Any]]:
    return [(i["index"], i["field"]) for i in error_of(response)["issues"]]


def test_huge_decimals_are_refused_naming_the_figure(client: TestClient) -> None:
    """The finding: decimals of 10^8 made a 100 MB answer; 10^7 with a unit made a 500."""
    for decimals in (10**7, 10**8):
        path = ("layers", FIGURE_LAYER, "lecture", 2, "decimals")
        response = client.post("/api/analyze", json=_replaced({path: decimals}))
        assert response.status_code == 422
        assert _issue_fields(response) == [(0, "lecture.2.decimals")]
        assert "over the limit of 12" in error_of(response)["issues"][0]["message"]


def test_a_value_of_ten_to_the_400_is_refused_naming_the_figure(client: TestClient) -> None:
    response = client.post("/api/analyze", json=_replaced({("lecture", 0, "value"): 10**400}))
    assert response.status_code == 422
    issue = error_of(response)["issues"][0]
    assert (issue["index"], issue["field"]) == (None, "lecture.0.value")
    limit = "1,000,000,000,000,000"
    assert issue["message"] == f"a number of 41 digits or more is over the limit of {limit}"


def test_factors_whose_product_passes_the_limit_are_refused(client: TestClient) -> None:
    factors = [999_999_999_999_999] * 16  # each within the limit, the product 240 digits
    path = ("layers", FIGURE_LAYER, "lecture", 0, "factors")
    response = client.post("/api/analyze", json=_replaced({path: factors}))
    assert response.status_code == 422
    assert _issue_fields(response) == [(0, "lecture.0.factors")]
    assert "product" in error_of(response)["issues"][0]["message"]


def test_texts_and_lists_have_limits(client: TestClient) -> None:
    spec = _replaced({})
    spec["layers"][0]["lecture"][1]["says"] = "x" * (LIMITS.max_text + 1)
    spec["notes"] = ["a note"] * (LIMITS.max_list + 1)
    spec["lecture"] = spec["lecture"] * (LIMITS.max_figures // 2 + 1)
    response = client.post("/api/analyze", json=spec)
    assert response.status_code == 422
    assert set(_issue_fields(response)) == {
        (None, "notes"),
        (None, "lecture"),
        (0, "lecture.1.says"),
    }


def test_the_check_answers_200_for_each_of_these(client: TestClient) -> None:
    path = ("layers", FIGURE_LAYER, "lecture", 2, "decimals")
    check = client.post("/api/analyze/check", json=_replaced({path: 10**8}))
    assert check.status_code == 200
    assert check.json()["valid"] is False
    assert check.json()["issues"][0]["field"] == "lecture.2.decimals"
