"""The server-rendered pages. Each reads the same catalog the API serves; the charts on them
fetch the API's JSON themselves (the URLs are in data- attributes, never in inline scripts).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.core.calculator import builtin_table
from app.core.errors import SpecInvalid, SpecIssue
from app.core.table import Table
from app.core.timeline import timeline
from app.specs import builtin_registry
from app.web.catalog import (
    analyze_cached,
    comparison,
    decode_spec,
    editable_spec,
    encode_spec,
    families,
    lecture_entries,
    summaries,
    summary_of,
)
from app.web.deps import NetId, SettingsDep, SpecBody, TemplatesDep

router = APIRouter(include_in_schema=False)

# The lecture's own comparison opens the compare page; the custom editor starts from its AlexNet.
DEFAULT_A, DEFAULT_B = "alexnet-lecture", "zfnet-lecture"
DEFAULT_CUSTOM = "alexnet-lecture"
# Settings always shown on the compare page; any other shows only where the two nets differ.
PRIMARY_SETTINGS = ("filters", "units", "kernel", "stride", "padding", "output_size")
VERDICTS = ("exact", "rounded", "differs", "context")

OptionalId = Annotated[str | None, Query(max_length=64)]


def _render(
    templates: TemplatesDep, request: Request, name: str, context: dict[str, Any]
) -> HTMLResponse:
    response: HTMLResponse = templates.TemplateResponse(request, name, context)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, templates: TemplatesDep) -> HTMLResponse:
    context = {"families": families(), "timeline": timeline(), "count": len(summaries())}
    return _render(templates, request, "home.html", context)


@router.get("/nets/{net_id}", response_class=HTMLResponse)
def net_page(net_id: NetId, request: Request, templates: TemplatesDep) -> HTMLResponse:
    spec = builtin_registry().get(net_id)
    context = {"spec": spec, "table": builtin_table(net_id), "summary": summary_of(net_id)}
    return _render(templates, request, "net.html", context)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, templates: TemplatesDep, a: OptionalId = None, b: OptionalId = None
) -> HTMLResponse:
    a = a or DEFAULT_A
    b = b or (DEFAULT_B if a != DEFAULT_B else DEFAULT_A)
    result = comparison(a, b)
    context = {
        "a": a,
        "b": b,
        "result": result,
        "nets": summaries(),
        "primary": PRIMARY_SETTINGS,
        "summary_a": summary_of(a),
        "summary_b": summary_of(b),
    }
    return _render(templates, request, "compare.html", context)


def _editor_spec(raw: object) -> dict[str, Any]:
    """The three parts the editor shows; a link's other keys would be invisible, so they go."""
    if not isinstance(raw, dict) or not isinstance(raw.get("layers"), list):
        raise ValueError("the link's spec is not an object with a list of layers")
    return {key: raw[key] for key in ("name", "input", "layers") if key in raw}


def _issues_by_layer(issues: list[SpecIssue]) -> tuple[dict[int, list[SpecIssue]], list[SpecIssue]]:
    by_layer: dict[int, list[SpecIssue]] = {}
    general = []
    for issue in issues:
        if issue.index is None:
            general.append(issue)
        else:
            by_layer.setdefault(issue.index, []).append(issue)
    return by_layer, general


def _layer_texts(spec: dict[str, Any]) -> list[str]:
    return [
        json.dumps(layer, ensure_ascii=False, separators=(", ", ": ")) for layer in spec["layers"]
    ]


@router.get("/custom", response_class=HTMLResponse)
def custom_page(
    request: Request,
    templates: TemplatesDep,
    settings: SettingsDep,
    start: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    spec: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    load_error = None
    editor = editable_spec(builtin_registry().get(start or DEFAULT_CUSTOM))
    if spec is not None:
        try:
            editor = _editor_spec(decode_spec(spec, settings.max_body_analyze))
        except ValueError as error:
            load_error = str(error)
    table: Table | None = None
    issues: list[SpecIssue] = []
    try:
        table = analyze_cached(editor, settings.spec_limits)
    except SpecInvalid as error:
        issues = error.issues
    by_layer, general = _issues_by_layer(issues)
    context = {
        "editor": editor,
        "layer_texts": _layer_texts(editor),
        "table": table,
        "issues_by_layer": by_layer,
        "general_issues": general,
        "load_error": load_error,
        "start": start or DEFAULT_CUSTOM,
        "nets": summaries(),
        "spec_param": encode_spec(editor),
    }
    return _render(templates, request, "custom.html", context)


@router.post("/custom/table", response_class=HTMLResponse)
def custom_table(
    request: Request, templates: TemplatesDep, settings: SettingsDep, spec: SpecBody
) -> Response:
    """The custom page's table and totals as an HTML fragment, from the same template."""
    table = analyze_cached(spec, settings.spec_limits)
    return _render(templates, request, "partials/custom_results.html", {"table": table})


@router.get("/lecture", response_class=HTMLResponse)
def lecture_page(
    request: Request, templates: TemplatesDep, verdict: OptionalId = None
) -> HTMLResponse:
    entries = lecture_entries()
    counts = {name: sum(1 for entry in entries if entry.verdict == name) for name in VERDICTS}
    shown = [entry for entry in entries if verdict in (None, entry.verdict)]
    context = {"entries": shown, "counts": counts, "verdict": verdict, "total": len(entries)}
    return _render(templates, request, "lecture.html", context)
