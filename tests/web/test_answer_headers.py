"""Headers on every answer (issue 14): the security headers on a 500 too, no `server` header from
a real server, gzip only where Accept-Encoding allows it, and each net run once per upload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.web.app import create_app
from app.web.encoding import gzip_accepted
from app.web.security import HEADERS, PAGE_POLICY

from .test_limits_server import LiveServer, serving


@pytest.fixture(scope="module")
def failing_client() -> Iterator[TestClient]:
    """The app with one route that fails as a bug would: the 500 Starlette's outermost
    middleware writes."""
    app = create_app()

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("/srv/secret/path: [Errno 2] kaboom")

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _assert_secured(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == PAGE_POLICY
    for name, value in HEADERS.items():
        assert response.headers[name] == value


def test_a_500_carries_the_security_headers_and_no_details(failing_client: TestClient) -> None:
    response = failing_client.get("/api/boom")
    assert response.status_code == 500
    _assert_secured(response)
    assert response.json()["error"]["code"] == "internal_error"
    assert "kaboom" not in response.text
    assert "/srv" not in response.text


@pytest.mark.parametrize("path", ["/", "/nets/vgg11", "/api/architectures", "/nope", "/healthz"])
def test_every_kind_of_answer_is_secured(client: TestClient, path: str) -> None:
    _assert_secured(client.get(path))


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [
        ("gzip", True),
        ("GZIP, br", True),
        ("br;q=1, gzip;q=0.5", True),
        ("*", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("identity", False),
        ("br", False),
        ("", False),
    ],
)
def test_accept_encoding_is_read_with_its_qualities(
    client: TestClient, header: str, gzipped: bool
) -> None:
    assert gzip_accepted(header) is gzipped
    for path in ("/", "/api/architectures/vgg11/table", "/lecture"):
        response = client.get(path, headers={"accept-encoding": header})
        assert response.status_code == 200
        assert (response.headers.get("content-encoding") == "gzip") is gzipped, path


@pytest.fixture(scope="module")
def live(models_root: Path) -> Iterator[LiveServer]:
    with serving(models_root) as server:
        yield server


def test_a_real_server_names_no_server_software(live: LiveServer) -> None:
    for path in ("/healthz", "/", "/nope"):
        response = httpx.get(live.url + path)
        assert "server" not in response.headers, path
        _assert_secured(response)


def test_a_net_named_twice_runs_once(predict_client: TestClient, photo_jpeg: bytes) -> None:
    files = {"image": ("p.jpg", photo_jpeg, "image/jpeg")}
    ids = "alexnet-lecture,alexnet-lecture, alexnet-lecture,zfnet-lecture,alexnet-lecture"
    response = predict_client.post("/api/predict", params={"ids": ids}, files=files)
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == ["alexnet-lecture", "zfnet-lecture"]
