"""The lecture's figures: the ILSVRC timeline and every figure beside its exact computation."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import TypeAdapter

from app.core.csv_safe import csv_text
from app.core.timeline import Timeline, timeline
from app.web.caching import NOT_MODIFIED
from app.web.catalog import LectureEntry, LectureSkip, lecture_entries, lecture_skips
from app.web.deps import TableFormat
from app.web.errors import error_responses
from app.web.responses import CSV, JSON, Encoded, attachment, encoded_response

router = APIRouter(prefix="/api", tags=["lecture"])

ENTRIES = TypeAdapter(list[LectureEntry])
SKIPS = TypeAdapter(list[LectureSkip])


@cache
def _timeline_body() -> Encoded:
    return Encoded.of(timeline().model_dump_json().encode("utf-8"))


@router.get(
    "/timeline",
    summary="ILSVRC top-5 error by year, depth beside it, with verdicts",
    response_model=Timeline,
    responses=NOT_MODIFIED,
)
async def get_timeline(request: Request) -> Response:
    """The lecture's ILSVRC chart as data: each year's winning top-5 error and depth, each
    figure checked against its source, and the context the lecture gives."""
    return encoded_response(_timeline_body(), JSON, request)


def _lecture_csv(entries: tuple[LectureEntry, ...]) -> str:
    rows = (list(entry.model_dump().values()) for entry in entries)
    return csv_text(list(LectureEntry.model_fields), rows)


@cache
def _lecture_body(format: str) -> Encoded:
    entries = lecture_entries()
    if format == "csv":
        return Encoded.of(_lecture_csv(entries).encode("utf-8"))
    return Encoded.of(ENTRIES.dump_json(list(entries)))


@router.get(
    "/lecture",
    summary="Every lecture figure beside the exact computation: exact, rounded or differs",
    response_model=list[LectureEntry],
    responses={
        **error_responses(406),
        **NOT_MODIFIED,
        200: {"content": {"text/csv": {}}, "description": "the figures (JSON, or CSV)"},
    },
)
async def get_lecture(request: Request, format: TableFormat) -> Response:
    """Each figure the lecture states (a volume, a parameter count, a total), where it is
    stated, the exact value beside it with its computation, the verdict and its basis (checked,
    or defined where a lecture net copies the figure), the reason, and the source of an outside
    figure. CSV with `?format=csv` or `Accept: text/csv`."""
    vary = ("Accept", "Accept-Encoding")
    if format == "csv":
        headers = attachment("lecture-check.csv")
        return encoded_response(_lecture_body("csv"), CSV, request, vary=vary, headers=headers)
    return encoded_response(_lecture_body("json"), JSON, request, vary=vary)


@cache
def _unstated_body() -> Encoded:
    return Encoded.of(SKIPS.dump_json(list(lecture_skips())))


@router.get(
    "/lecture/unstated",
    summary="The lecture nets' conv and pool layers whose output the lecture never states",
    response_model=list[LectureSkip],
    responses=NOT_MODIFIED,
)
async def get_unstated(request: Request) -> Response:
    """The lecture works through its AlexNet and ZFNet layer by layer but skips some outputs:
    each such layer with its exact volume and the formula that gives it."""
    return encoded_response(_unstated_body(), JSON, request)
