"""What the inference service refuses, each with the HTTP status the web layer answers with."""

from __future__ import annotations

from typing import ClassVar


class InferenceError(Exception):
    """Base of the service's refusals."""

    http_status = 500


class UnknownModel(InferenceError, LookupError):
    http_status = 404

    def __init__(self, model_id: str, known: list[str]) -> None:
        super().__init__(f"unknown net {model_id!r}; known: {', '.join(known)}")
        self.model_id = model_id
        self.known = known


class ModelUnavailable(InferenceError):
    """A known net whose model cannot be served now: not built yet, or a broken build."""

    http_status = 503

    def __init__(self, model_id: str, reason: str) -> None:
        super().__init__(f"{model_id}: {reason}")
        self.model_id = model_id
        self.reason = reason


class ImageRejected(InferenceError):
    """An upload that is not an image we can read: ``code`` is stable, ``message`` is for people.

    Codes: ``empty`` and ``undecodable`` (422), ``unsupported_format`` and ``unsupported_mode``
    (415), ``too_large`` (413: more pixels than Settings.max_image_pixels).
    """

    STATUS: ClassVar[dict[str, int]] = {
        "empty": 422,
        "undecodable": 422,
        "unsupported_format": 415,
        "unsupported_mode": 415,
        "too_large": 413,
    }

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = self.STATUS[code]
