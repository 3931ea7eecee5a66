"""GET /api/architectures, /api/architectures/{id} and /api/architectures/{id}/table."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from app.specs import builtin_registry
from tests.goldens import golden_csv, golden_table

from .support import error_of

IDS = builtin_registry().ids()


def test_the_list_has_one_summary_per_net(client: TestClient) -> None:
    response = client.get("/api/architectures")
    assert response.status_code == 200
    assert [item["id"] for item in response.json()] == IDS


@pytest.mark.parametrize("net_id", IDS)
def test_a_summary_reads_the_spec_and_the_table(client: TestClient, net_id: str) -> None:
    summary = next(item for item in client.get("/api/architectures").json() if item["id"] == net_id)
    spec, totals = builtin_registry().get(net_id), golden_table(net_id)["totals"]
    assert summary["name"] == spec.name
    assert summary["family"] == spec.family
    assert summary["year"] == spec.year
    assert summary["input"] == spec.input.model_dump()
    assert (summary["params"], summary["macs"], summary["depth"]) == (
        totals["params"],
        totals["macs"],
        totals["depth"],
    )
    published = spec.weights.url.rsplit("/", 1)[-1] if spec.weights else None
    assert summary["published_weights"] == published
    assert summary["simplifies"] == spec.simplifies


@pytest.mark.parametrize("net_id", IDS)
def test_the_top5_error_is_the_reported_one_the_checkpoints_or_none_of_its_own(
    client: TestClient, net_id: str
) -> None:
    summary = next(item for item in client.get("/api/architectures").json() if item["id"] == net_id)
    error = summary["top5_error"]
    spec = builtin_registry().get(net_id)
    if spec.simplifies is not None:
        base = builtin_registry().get(spec.simplifies)
        assert (error["value"], error["kind"], error["of"]) == (None, "variant", base.id)
        assert error["text"].startswith("no error of its own: the lecture's simplification of")
        assert base.name in error["text"]
    elif spec.top5_error is not None:
        assert (error["value"], error["kind"]) == (spec.top5_error.value, "reported")
        assert error["source"] == spec.top5_error.source
    elif spec.weights is not None:
        expected = float(Decimal(100) - Decimal(str(spec.weights.acc5)))
        assert (error["value"], error["kind"]) == (expected, "checkpoint")
    else:
        assert (error["value"], error["kind"]) == (None, "none")
    assert error["value"] is None or error["source"], "every figure names where it comes from"


def test_the_checkpoint_error_of_vgg16_is_100_minus_its_top5_accuracy(client: TestClient) -> None:
    summary = next(
        item for item in client.get("/api/architectures").json() if item["id"] == "vgg16"
    )
    assert summary["top5_error"]["value"] == pytest.approx(100 - 90.382)
    assert summary["top5_error"]["headline"] == "9.618 %"
    assert "vgg16-397923af.pth" in summary["top5_error"]["detail"]


def test_the_lecture_nets_quote_the_error_of_the_net_they_simplify(client: TestClient) -> None:
    """alexnet-lecture was never trained: 16.4 % is AlexNet 2012's, said as such."""
    summaries = {item["id"]: item for item in client.get("/api/architectures").json()}
    lecture, paper = summaries["alexnet-lecture"], summaries["alexnet-2012"]
    assert lecture["top5_error"]["value"] is None
    assert paper["top5_error"]["value"] == 16.4
    assert lecture["top5_error"]["text"] == (
        "no error of its own: the lecture's simplification of AlexNet (Krizhevsky et al. 2012), "
        f"which reached {paper['top5_error']['text']}"
    )
    assert summaries["zfnet-lecture"]["top5_error"]["of"] == "zfnet-2013"


@pytest.mark.parametrize("net_id", IDS)
def test_the_spec_is_served_as_declared(client: TestClient, net_id: str) -> None:
    response = client.get(f"/api/architectures/{net_id}")
    assert response.status_code == 200
    assert response.json() == builtin_registry().get(net_id).model_dump(mode="json")


@pytest.mark.parametrize("net_id", IDS)
def test_the_table_is_the_golden_table(client: TestClient, net_id: str) -> None:
    response = client.get(f"/api/architectures/{net_id}/table")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == golden_table(net_id)


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_the_table_is_the_same_bytes_gzipped_or_not(client: TestClient, encoding: str) -> None:
    """Served from bytes made once: gzip for a client that takes it, plain for one that does not;
    either way the JSON the CLI prints, and a cache keyed on Accept (JSON or CSV) and
    Accept-Encoding."""
    path = "/api/architectures/vgg16/table"
    raw = client.get(path, headers={"Accept-Encoding": encoding})
    assert raw.status_code == 200
    assert raw.headers.get("content-encoding") == (encoding if encoding == "gzip" else None)
    assert raw.headers["vary"] == "Accept, Accept-Encoding"
    assert json.loads(raw.content) == golden_table("vgg16")
    assert raw.content == client.get(path, headers={"Accept-Encoding": encoding}).content


def test_the_table_downloads_as_csv(client: TestClient) -> None:
    response = client.get("/api/architectures/alexnet-lecture/table", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="alexnet-lecture.csv"'
    assert response.text == golden_csv("alexnet-lecture")


@pytest.mark.parametrize(
    "path", ["/api/architectures/lenet", "/api/architectures/lenet/table?format=csv"]
)
def test_an_unknown_id_is_404_naming_the_known_ids(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "unknown_net"
    assert error["id"] == "lenet"
    assert error["known"] == IDS
    assert "lenet" in str(error["message"])


def test_an_unknown_format_is_422(client: TestClient) -> None:
    response = client.get("/api/architectures/vgg16/table", params={"format": "xml"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["issues"][0]["location"] == "query.format"
