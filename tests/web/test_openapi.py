"""/openapi.json as API tooling reads it: readable operationIds, described tags, a response
model on every route, one error model on every route, an example for each request body, and
schema names a generated client can use."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.web.routers.analyze import EXAMPLE_SPEC

METHODS = {"get", "post", "put", "patch", "delete"}
CAMEL_CASE = re.compile(r"[a-z]+(?:[A-Z][a-z0-9]*)*")
ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}
# Statuses whose answer has no body by definition.
NO_BODY = {"304"}


@pytest.fixture(scope="module")
def spec(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_operation_ids_are_readable_and_unique(spec: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if not CAMEL_CASE.fullmatch(i)] == []
    assert {"listArchitectures", "getArchitecture", "getTable", "compareNets"} <= set(ids)
    assert {"analyzeSpec", "checkSpec", "getTimeline", "getLecture"} <= set(ids)
    assert {"predict", "predictMany", "featureMaps", "healthz", "readyz"} <= set(ids)


def test_no_schema_name_carries_a_module_path(spec: dict[str, Any]) -> None:
    names = list(spec["components"]["schemas"])
    assert [name for name in names if "__" in name or name.startswith("app")] == []
    assert "HTTPValidationError" not in names  # 422 is our envelope, not FastAPI's default


def test_every_tag_is_declared_with_a_description(spec: dict[str, Any]) -> None:
    declared = {tag["name"]: tag.get("description", "") for tag in spec["tags"]}
    assert all(description.strip() for description in declared.values()), declared
    for method, path, operation in operations(spec):
        assert len(operation["tags"]) == 1, (method, path)
        assert operation["tags"][0] in declared, (method, path)
    used = {operation["tags"][0] for _, _, operation in operations(spec)}
    assert used == set(declared)


def test_every_operation_is_summarized_and_described(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        assert operation.get("summary", "").strip(), (method, path)
        assert len(operation.get("description", "")) > 40, (method, path)


BINARY = {"type": "string", "format": "binary"}


def test_every_success_has_a_response_model(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        success = operation["responses"]["200"]
        if "image/png" in success["content"]:  # a picture (conv1's filters): bytes, said so
            assert success["content"] == {"image/png": {"schema": BINARY}}, (method, path)
            continue
        schema = success["content"]["application/json"]["schema"]
        assert schema not in ({}, {"type": "object"}), (method, path)
        assert "$ref" in schema or "items" in schema, (method, path, schema)


def test_every_error_is_the_one_envelope(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        errors = {
            status: answer for status, answer in operation["responses"].items() if status[0] in "45"
        }
        assert {"400", "413", "500", "503"} <= set(errors), (method, path)
        for status, answer in errors.items():
            assert answer["content"]["application/json"]["schema"] == ENVELOPE, (path, status)


def test_conditional_routes_document_their_304(spec: dict[str, Any]) -> None:
    for path in ("/api/architectures", "/api/architectures/{net_id}/table", "/api/lecture"):
        assert "304" in spec["paths"][path]["get"]["responses"], path


def test_every_request_body_has_an_example(spec: dict[str, Any]) -> None:
    bodies = [
        (path, media)
        for method, path, operation in operations(spec)
        if "requestBody" in operation
        for media in operation["requestBody"]["content"].values()
    ]
    assert len(bodies) == 7  # two spec routes, three upload routes, the practice check, what-if
    for path, media in bodies:
        examples = [media["example"]] if "example" in media else list(media["examples"].values())
        assert examples, path


@pytest.mark.parametrize("path", ["/api/analyze", "/api/analyze/check"])
def test_the_spec_example_is_a_valid_spec(
    client: TestClient, spec: dict[str, Any], path: str
) -> None:
    example = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert example == EXAMPLE_SPEC
    response = client.post(path, json=example)
    assert response.status_code == 200
    table = response.json() if path == "/api/analyze" else response.json()["table"]
    assert table["totals"]["params"] == 3 * 3 * 3 * 8 + 8 + 15 * 15 * 8 * 10 + 10


def test_the_api_version_is_the_packages(spec: dict[str, Any]) -> None:
    import app

    assert spec["info"]["version"] == app.__version__
