"""One error shape for every 4xx and 5xx: ``{"error": {"code", "message", ...details}}``.

Page requests (a browser asking for HTML outside /api) get the same code and message rendered as
a page, so a mistyped net id shows the known nets as links rather than raw JSON.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import SpecInvalid
from app.inference.errors import ImageRejected, InferenceError, UnknownModel
from app.specs import UnknownSpecError

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "not_ready",
}
# An image the service refuses: the envelope's code by status; the service's own reason (empty,
# undecodable, unsupported_format, unsupported_mode, too_large) travels as ``problem``.
IMAGE_CODES = {413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_image"}
MACHINE_PREFIXES = ("/api/", "/healthz", "/readyz", "/static/", "/openapi.json")


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


def unknown_net(error: UnknownSpecError) -> ApiError:
    return ApiError(404, "unknown_net", str(error), id=error.spec_id, known=error.known)


def invalid_spec(error: SpecInvalid) -> ApiError:
    count = len(error.issues)
    message = f"the spec has {count} problem{'' if count == 1 else 's'}"
    issues = [issue.model_dump() for issue in error.issues]
    return ApiError(422, "invalid_spec", message, issues=issues)


def inference_error(error: InferenceError) -> ApiError:
    """A refusal of the inference service as the envelope: its status, its stable code, the net
    and the reason where it has them, and Retry-After where waiting is expected to help."""
    if isinstance(error, UnknownModel):
        return ApiError(404, "unknown_net", str(error), id=error.model_id, known=error.known)
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
    return ApiError(error.http_status, error.code, str(error), headers=headers, **present)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the envelope for these statuses."""
    return {status: {"model": ErrorEnvelope} for status in statuses}


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
    body = {"error": {"code": error.code, "message": error.message, **error.details}}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


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
    return response


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
