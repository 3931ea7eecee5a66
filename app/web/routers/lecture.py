"""The lecture's figures: the ILSVRC timeline and every figure beside its exact computation."""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter
from fastapi.responses import Response

from app.core.timeline import Timeline, timeline
from app.web.catalog import LectureEntry, LectureSkip, lecture_entries, lecture_skips
from app.web.deps import TableFormat
from app.web.responses import csv_download

router = APIRouter(prefix="/api", tags=["lecture"])


@router.get("/timeline", summary="ILSVRC top-5 error by year, depth beside it, with verdicts")
def get_timeline() -> Timeline:
    return timeline()


def _lecture_csv(entries: tuple[LectureEntry, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    fields = list(LectureEntry.model_fields)
    writer.writerow(fields)
    for entry in entries:
        writer.writerow(["" if value is None else value for value in entry.model_dump().values()])
    return buffer.getvalue()


@router.get(
    "/lecture",
    summary="Every lecture figure beside the exact computation: exact, rounded or differs",
    response_model=list[LectureEntry],
    responses={200: {"content": {"text/csv": {}}, "description": "the figures (JSON, or CSV)"}},
)
def get_lecture(format: TableFormat = "json") -> Response | list[LectureEntry]:
    entries = lecture_entries()
    if format == "csv":
        return csv_download(_lecture_csv(entries), "lecture-check.csv")
    return list(entries)


@router.get(
    "/lecture/unstated",
    summary="The lecture nets' conv and pool layers whose output the lecture never states",
)
def get_unstated() -> list[LectureSkip]:
    return list(lecture_skips())
