"""GET /api/compare: two built-in nets aligned stage by stage."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.specs import builtin_registry
from tests.goldens import golden_table, stage_sums

from .support import error_of


def check_with_goldens(body: dict[str, Any], a: str, b: str) -> None:
    """Every number of a comparison against the two nets' golden tables: totals, their
    differences and ratios, and each stage's sums over the layers it spans."""
    golden_a, golden_b = golden_table(a), golden_table(b)
    assert {total["quantity"] for total in body["totals"]} >= {"params", "macs", "depth"}
    for total in body["totals"]:
        expected_a = golden_a["totals"][total["quantity"]]
        expected_b = golden_b["totals"][total["quantity"]]
        assert (total["a"], total["b"]) == (expected_a, expected_b), total
        assert total["difference"] == expected_b - expected_a, total
        assert total["ratio"] == round(expected_b / expected_a, 6), total
    for stage in body["stages"]:
        sums = {}
        for side, golden in (("a", golden_a), ("b", golden_b)):
            if stage[side] is None:
                sums[side] = {"params": 0, "macs": 0}
                continue
            sums[side] = stage_sums(golden, stage[side]["first"], stage[side]["last"])
            assert golden["layers"][stage[side]["first"]]["name"] == stage[side]["label"]
            for key in ("params", "macs", "output"):
                assert stage[side][key] == sums[side][key], (side, stage[side]["label"], key)
        assert stage["params_delta"] == sums["b"]["params"] - sums["a"]["params"]
        assert stage["macs_delta"] == sums["b"]["macs"] - sums["a"]["macs"]
    assert sum(stage["params_delta"] for stage in body["stages"]) == (
        golden_b["totals"]["params"] - golden_a["totals"]["params"]
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [("alexnet-lecture", "zfnet-lecture"), ("alexnet-2012", "zfnet-2013"), ("vgg16", "vgg19-bn")],
)
def test_compare_numbers_are_the_golden_tables(client: TestClient, a: str, b: str) -> None:
    response = client.get("/api/compare", params={"a": a, "b": b})
    assert response.status_code == 200
    check_with_goldens(response.json(), a, b)


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
    rows = list(csv.DictReader(io.StringIO(response.text)))
    stages = client.get("/api/compare", params={"a": "vgg11", "b": "vgg16"}).json()["stages"]
    assert len(rows) == len(stages)
    golden_a, golden_b = golden_table("vgg11"), golden_table("vgg16")
    for row, stage in zip(rows, stages, strict=True):
        sums = {
            side: stage_sums(golden, stage[side]["first"], stage[side]["last"])
            if stage[side]
            else {"params": 0, "macs": 0}
            for side, golden in (("a", golden_a), ("b", golden_b))
        }
        for side in ("a", "b"):
            expected = str(sums[side]["params"]) if stage[side] else ""
            assert row[f"{side}_params"] == expected
        assert int(row["params_delta"]) == sums["b"]["params"] - sums["a"]["params"]
        assert int(row["macs_delta"]) == sums["b"]["macs"] - sums["a"]["macs"]


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
