"""One error shape for every 4xx and 5xx: ``{"error": {"code", "message", ...details}}``.

Page requests (a browser asking for HTML outside /api) get the same code and message rendered as
a page, so a mistyped net id shows the known nets as links rather than raw JSON.

Nothing hostile is echoed: an unknown id is named only when it looks like an id, and a spec's
issues repeat a layer's name or an unknown key only when it is plain text, cut to a few dozen
characters.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.dependencies.utils import get_flat_params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import SpecInvalid, SpecIssue
from app.inference.errors import ImageRejected, InferenceError, UnknownModel
from app.specs import UnknownSpecError
from app.web.public import public_text

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "not_ready",
}
# An image the service refuses: the envelope's code by status; the service's own reason (empty,
# undecodable, unsupported_format, unsupported_mode, too_large) travels as ``problem``.
IMAGE_CODES = {413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_image"}
MACHINE_PREFIXES = ("/api/", "/healthz", "/readyz", "/static/", "/openapi.json")
# Statuses any route can answer: a malformed request or Content-Length (400), a body too slow
# (408) or too large (413), a failure of ours (500), shutting down (503). Routes with parameters
# add 422. Declared for every operation, so /openapi.json lists every status the API returns.
COMMON_STATUSES = (400, 408, 413, 500, 503)
# What may be echoed back: an id-shaped value, and issue text cut to this many characters.
ECHOABLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_ECHO = 64
# A layer name or key repeated in an issue only when it is plain text (a name like "conv1 (3x3)"
# is repeated, "<b>x</b>" is not): no markup, quote or backslash, and no character of these
# Unicode categories: controls, formats (bidi overrides, zero-width), surrogates, private use,
# unassigned, line and paragraph separators.
MARKUP = frozenset("<>&\"'`\\")
NOT_PLAIN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class ErrorBody(BaseModel):
    """``code`` is stable and machine-readable; the other keys depend on it (issues, known)."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details


def echoable(value: str) -> str | None:
    """``value`` when it is safe and short enough to repeat to its sender, else None."""
    return value if ECHOABLE.fullmatch(value) else None


def plain(text: str | None) -> str | None:
    """User text fit to repeat in an issue: plain and cut short, else None (the issue still
    says where: the layer's index)."""
    if text is None or not text or not all(map(_is_plain, text)):
        return None
    return cut(text)


def _is_plain(character: str) -> bool:
    return character not in MARKUP and unicodedata.category(character) not in NOT_PLAIN_CATEGORIES


def cut(text: str | None, limit: int = MAX_ECHO) -> str | None:
    """User text cut to ``limit`` characters: enough to find it, never a whole hostile body."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "\u2026"


def unknown_id(net_id: str, known: list[str]) -> ApiError:
    """404 naming the known nets; the asked id is repeated only when it looks like an id."""
    shown = echoable(net_id)
    asked = "unknown net" if shown is None else f"unknown net {shown!r}"
    details: dict[str, Any] = {"known": known} if shown is None else {"id": shown, "known": known}
    return ApiError(404, "unknown_net", f"{asked}; known: {', '.join(known)}", **details)


def unknown_net(error: UnknownSpecError) -> ApiError:
    return unknown_id(error.spec_id, error.known)


def bounded_issues(issues: Iterable[SpecIssue]) -> list[SpecIssue]:
    """The issues with their user-supplied text (layer names, unknown keys) repeated only when
    plain, and cut short; a message is the calculator's own words."""
    return [
        issue.model_copy(
            update={
                "name": plain(issue.name),
                "field": plain(issue.field),
                "message": cut(issue.message, 4 * MAX_ECHO),
            }
        )
        for issue in issues
    ]


def invalid_spec(error: SpecInvalid) -> ApiError:
    count = len(error.issues)
    message = f"the spec has {count} problem{'' if count == 1 else 's'}"
    issues = [issue.model_dump() for issue in bounded_issues(error.issues)]
    return ApiError(422, "invalid_spec", message, issues=issues)


def inference_error(error: InferenceError) -> ApiError:
    """A refusal of the inference service as the envelope: its status, its stable code, the net
    and the reason where it has them, and Retry-After where waiting is expected to help."""
    if isinstance(error, UnknownModel):
        return unknown_id(error.model_id, error.known)
    if isinstance(error, ImageRejected):
        code = IMAGE_CODES.get(error.http_status, "invalid_image")
        return ApiError(error.http_status, code, error.message, problem=error.code)
    details: dict[str, Any] = {
        "id": getattr(error, "model_id", None),
        "reason": getattr(error, "reason", None),
        "retry_after_s": error.retry_after_s,
    }
    headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s else None
    present = {key: value for key, value in details.items() if value is not None}
    if "reason" in present:
        present["reason"] = public_text(present["reason"])
    message = public_text(str(error))
    return ApiError(error.http_status, error.code, message, headers=headers, **present)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the envelope for these statuses."""
    return {status: {"model": ErrorEnvelope} for status in statuses}


def declare_common_errors(router: APIRouter) -> None:
    """Document on every operation of ``router`` the statuses any request can meet
    (COMMON_STATUSES), and 422 as the envelope (not FastAPI's default schema) wherever a route
    takes parameters. Idempotent: the routers are module-level, and every app shares them."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        statuses = [*COMMON_STATUSES]
        if get_flat_params(route.dependant):  # a dependency's parameters too
            statuses.append(422)
        route.responses = {**error_responses(*statuses), **route.responses}


def envelope(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **details}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **details: Any
) -> JSONResponse:
    """The envelope as a response, for the middlewares that answer before any route runs."""
    return JSONResponse(envelope(code, message, **details), status_code=status, headers=headers)


def _wants_page(request: Request) -> bool:
    path = request.url.path
    return not path.startswith(MACHINE_PREFIXES) and "text/html" in request.headers.get(
        "accept", ""
    )


def _render(request: Request, error: ApiError) -> Response:
    if _wants_page(request):
        templates = request.app.state.templates
        context = {"error": error, "details": error.details}
        return templates.TemplateResponse(  # type: ignore[no-any-return]
            request, "error.html", context, status_code=error.status, headers=error.headers
        )
    return error_response(
        error.status, error.code, error.message, error.headers or None, **error.details
    )


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return _render(request, error)


async def _unknown_net(request: Request, error: Exception) -> Response:
    assert isinstance(error, UnknownSpecError)
    return _render(request, unknown_net(error))


async def _invalid_spec(request: Request, error: Exception) -> Response:
    assert isinstance(error, SpecInvalid)
    return _render(request, invalid_spec(error))


async def _inference_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, InferenceError)
    if error.http_status >= 500 and error.http_status != 503:
        return await _unexpected(request, error)  # a failure of ours: logged, no details
    return _render(request, inference_error(error))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    code = HTTP_CODES.get(error.status_code, f"http_{error.status_code}")
    message = error.detail if isinstance(error.detail, str) else code.replace("_", " ")
    response = _render(request, ApiError(error.status_code, code, message))
    response.headers.update(error.headers or {})
    if error.status_code == 405 and (allowed := allowed_methods(request)):
        response.headers["Allow"] = allowed
    return response


def allowed_methods(request: Request) -> str | None:
    """Every method the API answers at this path, from its OpenAPI paths. Starlette's 405 names
    only the methods of the first route that matched the path, so a path served by a GET route
    and a POST route would say ``Allow: GET``. None outside the documented API."""
    segments = request.url.path.split("/")
    paths: dict[str, dict[str, Any]] = request.app.openapi()["paths"]
    methods = {
        method.upper()
        for template, operations in paths.items()
        if _matches(template.split("/"), segments)
        for method in operations
    }
    if "GET" in methods:
        methods.add("HEAD")  # Starlette answers HEAD wherever it answers GET
    return ", ".join(sorted(methods)) or None


def _matches(template: list[str], segments: list[str]) -> bool:
    return len(template) == len(segments) and all(
        part == segment or (part.startswith("{") and part.endswith("}") and segment != "")
        for part, segment in zip(template, segments, strict=True)
    )


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _request_invalid(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    issues = [
        {"location": _location(item["loc"]), "message": item["msg"]} for item in error.errors()
    ]
    where = ", ".join(issue["location"] for issue in issues)
    message = f"invalid request: {where}"
    return _render(request, ApiError(422, "invalid_request", message, issues=issues))


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return _render(request, ApiError(500, "internal_error", "something went wrong on our side"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(UnknownSpecError, _unknown_net)
    app.add_exception_handler(SpecInvalid, _invalid_spec)
    app.add_exception_handler(InferenceError, _inference_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(Exception, _unexpected)
