"""HTTP as caches and clients expect it: strong ETags on pages and JSON, 304 on If-None-Match,
Cache-Control everywhere it matters, `Accept: text/csv` on the table routes, and no header
said twice (checked on the wire, against a real server)."""

from __future__ import annotations

import hashlib
import http.client
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.web.app import create_app
from app.web.negotiation import preferred
from scripts.liveserver import LiveServer, server_env, serving
from tests.goldens import golden_csv

STRONG = re.compile(r'"[0-9a-f]{32}(-gzip)?"')
# Routes whose answer is built-in data, made once: each is revalidated with its ETag.
CONDITIONAL = [
    "/",
    "/nets/vgg16",
    "/compare",
    "/compare?a=vgg11&b=vgg13",
    "/lecture",
    "/custom",
    "/api/architectures",
    "/api/architectures/alexnet-lecture",
    "/api/architectures/vgg16/table",
    "/api/architectures/vgg16/table?format=csv",
    "/api/compare?a=alexnet-lecture&b=zfnet-lecture",
    "/api/compare?a=alexnet-lecture&b=zfnet-lecture&format=csv",
    "/api/timeline",
    "/api/lecture",
    "/api/lecture?format=csv",
]
IDENTITY = {"Accept-Encoding": "identity"}
GZIP = {"Accept-Encoding": "gzip"}


@pytest.mark.parametrize("url", CONDITIONAL)
@pytest.mark.parametrize("encoding", [GZIP, IDENTITY], ids=["gzip", "identity"])
def test_a_second_get_with_the_etag_is_304_without_a_body(
    client: TestClient, url: str, encoding: dict[str, str]
) -> None:
    first = client.get(url, headers=encoding)
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert STRONG.fullmatch(tag), tag
    assert first.headers["cache-control"] == "no-cache"
    again = client.get(url, headers={**encoding, "If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    assert again.headers["cache-control"] == "no-cache"
    assert again.headers["vary"] == first.headers["vary"]
    assert "content-disposition" not in again.headers


def test_the_etag_is_the_hash_of_the_body_it_names(client: TestClient) -> None:
    plain = client.get("/api/architectures/vgg16/table", headers=IDENTITY)
    digest = hashlib.sha256(plain.content).hexdigest()[:32]
    assert plain.headers["etag"] == f'"{digest}"'
    zipped = client.get("/api/architectures/vgg16/table", headers=GZIP)
    assert zipped.headers["etag"] == f'"{digest}-gzip"'  # another representation, another tag
    page = client.get("/nets/vgg16", headers=IDENTITY)
    assert page.headers["etag"] == f'"{hashlib.sha256(page.content).hexdigest()[:32]}"'


def test_the_same_content_has_the_same_etag_in_another_process() -> None:
    """Content hashes, not counters or times: two servers (a restart, a second replica) agree,
    so a browser's cached copy stays valid across them."""
    with TestClient(create_app()) as one, TestClient(create_app()) as two:
        for url in ("/", "/api/architectures/vgg16/table", "/api/lecture?format=csv"):
            assert one.get(url).headers["etag"] == two.get(url).headers["etag"]


def test_if_none_match_takes_lists_weak_tags_and_a_star(client: TestClient) -> None:
    url = "/api/architectures/vgg16/table"
    tag = client.get(url).headers["etag"]
    for header in (f'"other", {tag}', f"W/{tag}", "*", f" {tag} "):
        assert client.get(url, headers={"If-None-Match": header}).status_code == 304, header
    for header in ('"other"', tag.replace('"', ""), f'"{tag}"', tag[:-2] + '"'):
        assert client.get(url, headers={"If-None-Match": header}).status_code == 200, header


def test_a_stale_or_foreign_etag_gets_the_body(client: TestClient) -> None:
    """The gzip's tag does not validate the plain body, nor a table's another table's."""
    zipped = client.get("/api/architectures/vgg16/table", headers=GZIP).headers["etag"]
    plain = client.get(
        "/api/architectures/vgg16/table", headers={**IDENTITY, "If-None-Match": zipped}
    )
    assert plain.status_code == 200
    other = client.get("/api/architectures/vgg19/table", headers={"If-None-Match": zipped})
    assert other.status_code == 200


def test_a_page_rendered_per_request_has_an_etag_too(client: TestClient) -> None:
    url = "/lecture?verdict=nothing-matches"
    first = client.get(url)
    again = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert (first.status_code, again.status_code) == (200, 304)


@pytest.mark.parametrize("url", ["/healthz", "/readyz", "/api/predict/alexnet-lecture"])
def test_answers_that_change_are_never_stored(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "etag" not in response.headers


def test_static_files_keep_their_year_and_revalidate_by_coding(client: TestClient) -> None:
    css = re.search(r'/static/[^"]+\.css', client.get("/").text)
    assert css is not None
    zipped = client.get(css.group(0), headers=GZIP)
    plain = client.get(css.group(0), headers=IDENTITY)
    assert zipped.headers["cache-control"] == plain.headers["cache-control"]
    assert "immutable" in zipped.headers["cache-control"]
    assert zipped.headers["etag"] == plain.headers["etag"][:-1] + '-gzip"'
    revalidated = client.get(
        css.group(0), headers={**IDENTITY, "If-None-Match": plain.headers["etag"]}
    )
    assert revalidated.status_code == 304


# Accept: text/csv on the table routes.

TABLE = "/api/architectures/alexnet-lecture/table"


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("text/csv", "text/csv; charset=utf-8"),
        ("text/csv, application/json;q=0.5", "text/csv; charset=utf-8"),
        ("application/json;q=0.5, text/*", "text/csv; charset=utf-8"),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        ("text/csv;q=0.5, application/json;q=0.5", "application/json"),  # a tie: JSON
        ("text/html,application/xhtml+xml,*/*;q=0.8", "application/json"),  # a browser
        ("text/csv;q=0, */*", "application/json"),
    ],
)
def test_the_accept_header_chooses_csv_or_json(
    client: TestClient, accept: str, media_type: str
) -> None:
    response = client.get(TABLE, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["vary"] == "Accept, Accept-Encoding"
    if media_type.startswith("text/csv"):
        assert response.text == golden_csv("alexnet-lecture")
        assert response.headers["content-disposition"].endswith('"alexnet-lecture.csv"')


def test_format_in_the_query_wins_over_accept(client: TestClient) -> None:
    response = client.get(TABLE, params={"format": "json"}, headers={"Accept": "text/csv"})
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "url", [TABLE, "/api/compare?a=vgg11&b=vgg13", "/api/lecture", "/api/analyze"]
)
def test_every_table_route_takes_accept_text_csv(client: TestClient, url: str) -> None:
    if url == "/api/analyze":
        from app.web.routers.analyze import EXAMPLE_SPEC

        response = client.post(url, json=EXAMPLE_SPEC, headers={"Accept": "text/csv"})
    else:
        response = client.get(url, headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text.splitlines()[0].count(",") >= 3


def test_an_accept_header_taking_neither_is_406(client: TestClient) -> None:
    response = client.get(TABLE, headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert response.json()["error"]["code"] == "not_acceptable"


def test_negotiation_prefers_the_most_specific_range() -> None:
    offers = ["application/json", "text/csv"]
    assert preferred(None, offers) == "application/json"
    assert preferred("text/*;q=0.9, text/csv;q=0.1, */*;q=0.5", offers) == "application/json"
    assert preferred("text/*;q=0.9, */*;q=0.5", offers) == "text/csv"
    assert preferred("TEXT/CSV", offers) == "text/csv"
    assert preferred("text/csv;q=nonsense", offers) == "text/csv"
    assert preferred("image/*", offers) is None
    assert preferred("application/json;q=0, text/csv;q=0", offers) is None


# Headers on the wire.


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    empty = tmp_path_factory.mktemp("no-models")
    with serving(server_env(Path(empty))) as server:
        yield server


def raw_headers(server: LiveServer, url: str, headers: dict[str, str]) -> list[tuple[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", url, headers=headers)
        response = connection.getresponse()
        response.read()
        return [(name.lower(), value) for name, value in response.getheaders()]
    finally:
        connection.close()


def static_url(server: LiveServer) -> str:
    found = re.search(r'/static/[^"]+\.js', server.get("/").text)
    assert found is not None
    return found.group(0)


@pytest.mark.parametrize("encoding", [GZIP, IDENTITY], ids=["gzip", "identity"])
def test_no_header_is_said_twice(live: LiveServer, encoding: dict[str, str]) -> None:
    urls = [*CONDITIONAL, static_url(live), "/healthz", "/readyz", "/openapi.json", "/docs"]
    urls += ["/nets/lenet", "/api/architectures/lenet", "/static/nope.js"]
    for url in urls:
        headers = raw_headers(live, url, encoding)
        names = [name for name, _ in headers]
        assert len(names) == len(set(names)), (url, headers)
        vary = dict(headers).get("vary", "")
        fields = [field.strip().lower() for field in vary.split(",") if field.strip()]
        assert len(fields) == len(set(fields)), (url, vary)
