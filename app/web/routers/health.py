"""Liveness and readiness."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from app.inference.results import ServiceStatus
from app.web.caching import NO_STORE
from app.web.deps import InferenceDep
from app.web.errors import ApiError, error_responses
from app.web.public import public_model

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """What start-up loaded, and the inference service's state."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ready"]
    nets: int
    tables: int
    timeline_points: int
    lecture_figures: int
    summaries: int
    static_files: int
    pages: int  # built-in pages rendered ahead of the first visit
    inference: ServiceStatus


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz(response: Response) -> Health:
    """200 as long as the process answers requests. A coroutine, so it answers on the event
    loop: never queued behind worker threads that uploads or pages are holding."""
    response.headers["Cache-Control"] = NO_STORE
    return Health(status="ok")


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
def readyz(request: Request, response: Response, service: InferenceDep) -> Readiness:
    response.headers["Cache-Control"] = NO_STORE
    loaded: dict[str, Any] | None = getattr(request.app.state, "loaded", None)
    if loaded is None:
        raise ApiError(503, "not_ready", "still loading the nets and their tables")
    return Readiness(status="ready", **loaded, inference=public_model(service.status()))
