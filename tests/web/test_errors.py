"""Every 4xx and 5xx has one shape; browsers asking for a page get it as a page."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.specs import builtin_registry
from app.web.app import create_app

from .support import error_of

HTML = {"accept": "text/html,application/xhtml+xml"}


def test_an_unknown_path_is_a_404_envelope(client: TestClient) -> None:
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_a_wrong_method_is_a_405_envelope(client: TestClient) -> None:
    response = client.delete("/api/architectures")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_an_unknown_net_page_is_an_html_404_linking_the_known_nets(client: TestClient) -> None:
    response = client.get("/nets/lenet", headers=HTML)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    for net_id in builtin_registry().ids():
        assert f'href="/nets/{net_id}"' in response.text


def test_an_unknown_net_page_asked_as_json_is_the_envelope(client: TestClient) -> None:
    response = client.get("/nets/lenet", headers={"accept": "application/json"})
    assert response.status_code == 404
    assert error_of(response)["known"] == builtin_registry().ids()


def test_an_unknown_compare_net_is_a_404_page(client: TestClient) -> None:
    response = client.get("/compare", params={"a": "lenet"}, headers=HTML)
    assert response.status_code == 404
    assert "lenet" in response.text


def test_an_unexpected_failure_is_a_500_envelope_without_details() -> None:
    app = create_app()

    def explode() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/api/explode", explode)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/explode")
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal_error"
    assert "secret" not in response.text
