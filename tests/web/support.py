"""Helpers shared by the API tests."""

from __future__ import annotations

from typing import Any

from httpx2 import Response


def error_of(response: Response) -> dict[str, Any]:
    """The error envelope's body, checking its one stable shape on the way."""
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    return error
