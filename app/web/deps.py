"""Annotated dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Path, Query, Request
from fastapi.templating import Jinja2Templates

from app.core.errors import parse_json
from app.settings import Settings
from app.web.errors import ApiError

JSON_MEDIA_TYPES = ("application/json", "text/json")


def _settings(request: Request) -> Settings:
    """The settings create_app() was given (tests pass their own)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


async def _spec_body(request: Request, settings: SettingsDep) -> object:
    """The request body as strict JSON, read no further than the analyze limit."""
    media_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if media_type not in JSON_MEDIA_TYPES and not media_type.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "send the spec as application/json")
    limit = settings.max_body_analyze
    too_large = ApiError(413, "payload_too_large", f"the spec is over {limit:,} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    try:
        return parse_json(bytes(body))
    except (UnicodeDecodeError, ValueError) as error:
        issue = {"index": None, "name": None, "field": None, "message": str(error)}
        raise ApiError(422, "invalid_json", f"not valid JSON: {error}", issues=[issue]) from None


TemplatesDep = Annotated[Jinja2Templates, Depends(_templates)]
SpecBody = Annotated[object, Depends(_spec_body)]
NetId = Annotated[
    str, Path(description="a built-in net id, see /api/architectures", examples=["alexnet-lecture"])
]
TableFormat = Annotated[
    Literal["json", "csv"], Query(description="json (the default) or csv, as a download")
]
