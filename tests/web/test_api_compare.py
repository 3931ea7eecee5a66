"""GET /api/compare: two built-in nets aligned stage by stage."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.core.calculator import builtin_table
from app.core.compare import compare, to_csv
from app.specs import builtin_registry

from .support import error_of


def _expected(a: str, b: str) -> dict[str, object]:
    registry = builtin_registry()
    result = compare(registry.get(a), builtin_table(a), registry.get(b), builtin_table(b))
    return result.model_dump(mode="json")


def test_compare_serves_the_cores_alignment(client: TestClient) -> None:
    response = client.get("/api/compare", params={"a": "alexnet-lecture", "b": "zfnet-lecture"})
    assert response.status_code == 200
    assert response.json() == _expected("alexnet-lecture", "zfnet-lecture")


def test_compare_names_what_changed_with_before_and_after(client: TestClient) -> None:
    body = client.get("/api/compare", params={"a": "alexnet-lecture", "b": "zfnet-lecture"}).json()
    conv1 = body["stages"][0]
    assert conv1["changes"] == [{"field": "kernel", "a": 11, "b": 7}]
    assert conv1["a"]["output"] == {"height": 55, "width": 55, "channels": 96}
    assert conv1["b"]["output"] == {"height": 56, "width": 56, "channels": 96}
    assert conv1["params_delta"] == conv1["b"]["params"] - conv1["a"]["params"]
    params = next(total for total in body["totals"] if total["quantity"] == "params")
    assert params["difference"] == params["b"] - params["a"]
    assert params["ratio"] == round(params["b"] / params["a"], 6)


def test_compare_downloads_as_csv(client: TestClient) -> None:
    response = client.get("/api/compare", params={"a": "vgg11", "b": "vgg16", "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="vgg11-vs-vgg16.csv"'
    registry = builtin_registry()
    result = compare(
        registry.get("vgg11"), builtin_table("vgg11"), registry.get("vgg16"), builtin_table("vgg16")
    )
    assert response.text == to_csv(result)


def test_compare_needs_both_nets(client: TestClient) -> None:
    response = client.get("/api/compare", params={"a": "vgg11"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert [issue["location"] for issue in error["issues"]] == ["query.b"]


def test_compare_with_an_unknown_net_is_404(client: TestClient) -> None:
    response = client.get("/api/compare", params={"a": "vgg11", "b": "resnet50"})
    assert response.status_code == 404
    error = error_of(response)
    assert (error["code"], error["id"]) == ("unknown_net", "resnet50")
    assert error["known"] == builtin_registry().ids()
