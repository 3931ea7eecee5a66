"""Annotated dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import Depends, Path, Query, Request
from fastapi.templating import Jinja2Templates
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.core.errors import parse_json
from app.inference.service import InferenceService
from app.settings import Settings
from app.web.errors import ApiError
from app.web.json_body import require_json, utf8_text
from app.web.negotiation import preferred

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

IMAGE_FIELD = "image"
# A multipart Content-Type is about 100 characters; a longer one is refused before it is parsed.
MAX_CONTENT_TYPE = 256
CONTENT_TYPE_LOCATION = "header.content-type"
# RFC 2046, section 5.1.1: a boundary is 1 to 70 of these characters, and does not end in a space.
MAX_BOUNDARY = 70
BOUNDARY_CHARS = frozenset(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=? "
)


def _settings(request: Request) -> Settings:
    """The settings create_app() was given (tests pass their own)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def _inference(request: Request) -> InferenceService:
    """The one InferenceService the lifespan created; 503 before start-up has run."""
    service: InferenceService | None = getattr(request.app.state, "inference", None)
    if service is None:
        raise ApiError(503, "not_ready", "still starting: the inference service is not up yet")
    return service


InferenceDep = Annotated[InferenceService, Depends(_inference)]


async def _bounded_chunks(request: Request, limit: int, what: str) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive, and 413 as soon as it is declared or read over limit."""
    too_large = ApiError(413, "payload_too_large", f"{what} is over {limit:,} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise too_large
        yield chunk


async def _spec_body(request: Request, settings: SettingsDep) -> object:
    """The request body as strict JSON, read no further than the analyze limit."""
    require_json(request.headers.get("content-type"), "the spec")
    body = bytearray()
    async for chunk in _bounded_chunks(request, settings.max_body_analyze, "the spec"):
        body += chunk
    text = utf8_text(bytes(body), "the spec")
    try:
        return parse_json(text)
    except (UnicodeDecodeError, ValueError) as error:
        issue = {"index": None, "name": None, "field": None, "message": str(error)}
        raise ApiError(422, "invalid_json", f"not valid JSON: {error}", issues=[issue]) from None


@dataclass(frozen=True)
class FormLimits:
    """What one upload may hold besides its picture (Settings: max_upload_files, ...)."""

    files: int
    fields: int
    field_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> FormLimits:
        fields, field_bytes = settings.max_form_fields, settings.max_form_field_bytes
        return cls(settings.max_upload_files, fields, field_bytes)


class _UploadParts:
    """python-multipart callbacks that keep the part named ``image`` in memory and hold the
    others to FormLimits: a file is the ``image`` part or any part with a filename, a field any
    other part, read no further than ``field_bytes``; one part too many is refused as it begins.

    Starlette's form parser spools uploads over 1 MB to a temporary file; an upload is never
    written to disk here, and the body is already bounded, so memory is too. The client's
    filename is never read: only whether there is one, and the part's name, decide.
    """

    def __init__(self, limits: FormLimits) -> None:
        self.limits = limits
        self.data: bytearray | None = None
        self.ended = False
        self.files = self.fields = 0
        self._kind: Literal["image", "file", "field"] = "field"
        self._field_bytes = 0
        self._header = bytearray()
        self._value = bytearray()
        self._disposition = b""

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._header.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._disposition = b""
        self._field_bytes = 0

    def _header_end(self) -> None:
        if bytes(self._header).lower() == b"content-disposition":
            self._disposition = bytes(self._value)
        self._header.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if options.get(b"name") == IMAGE_FIELD.encode():
            self._kind = "image"
        else:
            self._kind = "file" if b"filename" in options else "field"
        self._count_part()
        if self._kind == "image":
            self.data = bytearray()

    def _count_part(self) -> None:
        if self._kind == "field":
            self.fields += 1
            if self.fields > self.limits.fields:
                raise _invalid_upload(f"more than {self.limits.fields} form fields", "body")
            return
        self.files += 1
        if self.files > self.limits.files:
            message = f"more than {self.limits.files} file; send one picture, as `{IMAGE_FIELD}`"
            raise _invalid_upload(message, "body")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._kind == "image" and self.data is not None:
            self.data.extend(data[start:end])
        elif self._kind == "field":
            self._field_bytes += end - start
            if self._field_bytes > self.limits.field_bytes:
                limit = self.limits.field_bytes
                raise ApiError(413, "payload_too_large", f"a form field is over {limit:,} bytes")

    def _end(self) -> None:
        self.ended = True


def _invalid_upload(message: str, location: str = f"body.{IMAGE_FIELD}") -> ApiError:
    issue = {"location": location, "message": message}
    return ApiError(422, "invalid_request", f"invalid request: {message}", issues=[issue])


def _multipart_boundary(request: Request) -> bytes:
    """The boundary, checked cheaply before anything parses it: the header is short, and the
    boundary is 1 to 70 characters of RFC 2046's set (so no pattern of it can be slow)."""
    content_type = request.headers.get("content-type", "")
    if len(content_type) > MAX_CONTENT_TYPE:
        raise _invalid_upload("the Content-Type header is too long", CONTENT_TYPE_LOCATION)
    media_type, options = parse_options_header(content_type)
    if media_type != b"multipart/form-data":
        message = f"send the image as multipart/form-data, in the field `{IMAGE_FIELD}`"
        raise ApiError(415, "unsupported_media_type", message)
    boundary = options.get(b"boundary")
    if not boundary:
        raise _invalid_upload("the multipart body has no boundary", CONTENT_TYPE_LOCATION)
    if not _is_rfc2046_boundary(boundary):
        message = "the multipart boundary is not 1 to 70 characters of RFC 2046"
        raise _invalid_upload(message, CONTENT_TYPE_LOCATION)
    return boundary


def _is_rfc2046_boundary(boundary: bytes) -> bool:
    return (
        0 < len(boundary) <= MAX_BOUNDARY
        and not boundary.endswith(b" ")
        and all(byte in BOUNDARY_CHARS for byte in boundary)
    )


async def _image_upload(request: Request, settings: SettingsDep) -> bytes:
    """The bytes of the multipart field ``image``, read no further than the predict limit.

    Parsing happens chunk by chunk as the body arrives: a boundary search per chunk, cheap
    enough for the event loop; decoding and inference run in the threadpool.
    """
    boundary = _multipart_boundary(request)
    parts = _UploadParts(FormLimits.of(settings))
    parser = MultipartParser(boundary, parts.callbacks())
    try:
        async for chunk in _bounded_chunks(request, settings.max_body_predict, "the upload"):
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as error:
        raise _invalid_upload(f"not a readable multipart body ({error})") from None
    if not parts.ended:
        raise _invalid_upload("the multipart body ends before its closing boundary")
    if parts.data is None:
        raise _invalid_upload(f"Field required: send the picture in the field `{IMAGE_FIELD}`")
    return bytes(parts.data)


ImageUpload = Annotated[bytes, Depends(_image_upload)]
TemplatesDep = Annotated[Jinja2Templates, Depends(_templates)]
SpecBody = Annotated[object, Depends(_spec_body)]
NetId = Annotated[
    str, Path(description="a built-in net id, see /api/architectures", examples=["alexnet-lecture"])
]
Format = Literal["json", "csv"]
FORMAT_MEDIA_TYPES: dict[str, Format] = {"application/json": "json", "text/csv": "csv"}


def _table_format(
    request: Request,
    format: Annotated[
        Format | None,
        Query(description="json or csv (a download); without it, the Accept header chooses"),
    ] = None,
) -> Format:
    """``?format=`` when given; else what the Accept header prefers (``Accept: text/csv``),
    JSON by default; 406 when it accepts neither."""
    if format is not None:
        return format
    chosen = preferred(request.headers.get("accept"), list(FORMAT_MEDIA_TYPES))
    if chosen is None:
        message = "this answer is application/json or text/csv; the Accept header takes neither"
        raise ApiError(406, "not_acceptable", message)
    return FORMAT_MEDIA_TYPES[chosen]


TableFormat = Annotated[Format, Depends(_table_format)]
