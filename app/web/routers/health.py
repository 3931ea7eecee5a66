"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.web.deps import InferenceDep
from app.web.errors import ApiError, error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    # A coroutine, so it answers on the event loop: never queued behind worker threads that
    # uploads or pages are holding.
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: what is loaded (nets, tables, static files, each net's model)",
    description=(
        "Ready once start-up has computed every table. `inference` says which provider runs "
        "the models (and why) and, per net, whether its model is built and loaded, or why not: "
        "a net still building is reported here, not as unreadiness."
    ),
    responses=error_responses(503),
)
def readyz(request: Request, service: InferenceDep) -> dict[str, Any]:
    loaded: dict[str, Any] | None = getattr(request.app.state, "loaded", None)
    if loaded is None:
        raise ApiError(503, "not_ready", "still loading the nets and their tables")
    return {"status": "ready", **loaded, "inference": service.status().model_dump()}
