"""What a JSON request body must be before it is parsed: a JSON media type, in UTF-8.

RFC 8259 makes UTF-8 the only encoding of JSON exchanged between systems. Python's json module
would also read UTF-16 and UTF-32 (it guesses from the first bytes), so a body in either would be
accepted here and nowhere else; it is refused instead, with the encoding named. A body with no
Content-Type (what an HTML form or a ``fetch`` without headers sends from any web page) is
refused too, so a page elsewhere cannot post a spec through a visitor's browser without the
CORS preflight a JSON media type needs.
"""

from __future__ import annotations

import codecs

from python_multipart.multipart import parse_options_header

from app.web.errors import ApiError

JSON_MEDIA_TYPES = ("application/json", "text/json")
UTF8_CHARSETS = frozenset({"utf-8", "utf8"})
# Byte-order marks, longest first (UTF-32's little-endian mark starts with UTF-16's).
BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _unsupported(message: str) -> ApiError:
    return ApiError(415, "unsupported_media_type", message)


def require_json(content_type: str | None, what: str) -> None:
    """415 unless the Content-Type is JSON (application/json, text/json or any +json) in UTF-8."""
    if not content_type:
        raise _unsupported(f"send {what} as application/json (the request has no Content-Type)")
    media_type, options = parse_options_header(content_type)
    name = media_type.decode("latin-1").lower()
    if name not in JSON_MEDIA_TYPES and not name.endswith("+json"):
        raise _unsupported(f"send {what} as application/json, not {name[:64] or 'nothing'}")
    charset = options.get(b"charset", b"utf-8").decode("latin-1").lower()
    if charset not in UTF8_CHARSETS:
        raise _unsupported(f"send {what} in UTF-8, not charset={charset[:32]}")


def _encoding_of(body: bytes) -> str | None:
    """UTF-16 or UTF-32 when the body starts with its byte-order mark or, without one, with
    the zero bytes JSON's ASCII first characters have in them (RFC 4627, section 3)."""
    for bom, name in BOMS:
        if body.startswith(bom):
            return name
    head = body[:4]
    if len(head) == 4 and b"\0\0\0" in (head[:3], head[1:]):
        return "UTF-32"
    if b"\0" in head:
        return "UTF-16"
    return None


def utf8_text(body: bytes, what: str) -> str:
    """The body as text: 415 naming the encoding for UTF-16 or UTF-32, 422 for invalid UTF-8."""
    encoding = _encoding_of(body)
    if encoding is not None:
        raise _unsupported(f"send {what} in UTF-8; this body is {encoding}")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        message = f"{what} is not valid UTF-8: byte {error.start:,} cannot be decoded"
        issue = {"index": None, "name": None, "field": None, "message": message}
        raise ApiError(422, "invalid_json", message, issues=[issue]) from None
