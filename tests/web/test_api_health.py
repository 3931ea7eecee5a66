"""GET /healthz and /readyz."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.specs import builtin_registry
from app.web.app import create_app

from .support import error_of


def test_healthz_answers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_says_what_is_loaded(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["nets"] == body["tables"] == len(builtin_registry())
    assert body["static_files"] > 0
    # home, a pair, lecture x 5, and per net its page, its editor and its practice
    assert body["pages"] == 2 + 5 + 3 * len(builtin_registry())
    assert body["lecture_figures"] > 0


def test_readyz_is_503_until_start_up_has_run() -> None:
    unstarted = TestClient(create_app())  # no `with`: the lifespan never runs
    response = unstarted.get("/readyz")
    assert response.status_code == 503
    assert error_of(response)["code"] == "not_ready"
