"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.web.errors import ApiError, error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: what is loaded (nets, tables, static files)",
    responses=error_responses(503),
)
def readyz(request: Request) -> dict[str, Any]:
    loaded: dict[str, Any] | None = getattr(request.app.state, "loaded", None)
    if loaded is None:
        raise ApiError(503, "not_ready", "still loading the nets and their tables")
    return {"status": "ready", **loaded}
