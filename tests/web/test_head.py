"""HEAD answers as GET does, without the body: pages, the API, static files and errors."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

# Headers that must be the GET's own (date and the like aside).
SAME = ("content-type", "content-length", "content-security-policy", "cache-control", "etag")


def first_stylesheet(client: TestClient) -> str:
    found = re.search(r'href="(/static/[^"]+\.css)"', client.get("/").text)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize(
    "path", ["/", "/nets/vgg16", "/api/architectures/alexnet-lecture/table", "/healthz", "/nope"]
)
def test_head_is_get_without_the_body(client: TestClient, path: str) -> None:
    got = client.get(path)
    head = client.head(path)
    assert head.status_code == got.status_code
    assert head.content == b""
    assert {name: head.headers.get(name) for name in SAME} == {
        name: got.headers.get(name) for name in SAME
    }


def test_head_of_a_static_file(client: TestClient) -> None:
    url = first_stylesheet(client)
    head = client.head(url, headers={"accept-encoding": "gzip"})
    assert head.status_code == 200
    assert head.headers["content-encoding"] == "gzip"
    assert int(head.headers["content-length"]) > 0
    assert head.content == b""


def test_head_of_a_post_only_route_is_405(client: TestClient) -> None:
    head = client.head("/api/analyze")
    assert head.status_code == 405
    assert head.headers["allow"] == "POST"
    assert head.content == b""
