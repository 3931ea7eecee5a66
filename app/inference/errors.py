"""What the inference service refuses, each with the HTTP status the web layer answers with.

Every error carries ``http_status``, a stable ``code`` and ``retry_after_s``: the seconds after
which the same request is expected to work (the web layer sends it as ``Retry-After``), or None
when retrying cannot help. Each keeps its constructor's arguments as ``args`` (the message is
``__str__``), so it copies and pickles: the scheduler gives every waiting request its own copy.
"""

from __future__ import annotations

import math
from typing import ClassVar


class InferenceError(Exception):
    """Base of the service's refusals."""

    http_status = 500
    code = "inference_error"
    retry_after_s: int | None = None


class UnknownModel(InferenceError, LookupError):
    http_status = 404
    code = "unknown_net"

    def __init__(self, model_id: str, known: list[str]) -> None:
        super().__init__(model_id, known)
        self.model_id = model_id
        self.known = known

    def __str__(self) -> str:
        return f"unknown net {self.model_id!r}; known: {', '.join(self.known)}"


class ModelUnavailable(InferenceError):
    """A known net whose model cannot be served now: not built yet, or a broken build."""

    http_status = 503
    code = "model_unavailable"

    def __init__(self, model_id: str, reason: str) -> None:
        super().__init__(model_id, reason)
        self.model_id = model_id
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.model_id}: {self.reason}"


class ModelLoading(InferenceError):
    """The net's model is loading and did not finish within the request's load deadline
    (Settings.load_deadline_s). Not a queue: the request waited for the load alone."""

    http_status = 503
    code = "model_loading"

    def __init__(self, model_id: str, reason: str, retry_after_s: float) -> None:
        super().__init__(model_id, reason, retry_after_s)
        self.model_id = model_id
        self.reason = reason
        self.retry_after_s = max(1, math.ceil(retry_after_s))

    def __str__(self) -> str:
        return f"{self.model_id}: {self.reason}"


class Overloaded(InferenceError):
    """The inference queue is full, or this request waited in it past the queue deadline."""

    http_status = 503
    code = "overloaded"

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason, retry_after_s)
        self.reason = reason
        self.retry_after_s = max(1, math.ceil(retry_after_s))  # Retry-After takes whole seconds

    def __str__(self) -> str:
        return self.reason


class InferenceFailed(InferenceError):
    """A run raised, or returned NaN or infinity: an error of ours, not of the request."""

    http_status = 500
    code = "inference_failed"

    def __init__(self, model_id: str, reason: str) -> None:
        super().__init__(model_id, reason)
        self.model_id = model_id
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.model_id}: {self.reason}"


class InferenceTimeout(InferenceFailed):
    """A run passed the inference deadline and was cancelled; the next request gets a fresh
    session, so a retry is expected to work."""

    http_status = 503
    code = "inference_timeout"
    retry_after_s = 1


class ImageRejected(InferenceError):
    """An upload that is not an image we can read: ``code`` is stable, ``message`` is for people.

    Codes: ``empty``, ``undecodable`` and ``too_elongated`` (422), ``unsupported_format`` and
    ``unsupported_mode`` (415), ``too_large`` (413: more pixels than Settings.max_image_pixels),
    ``over_budget`` (413: decoding would take more memory than Settings.decode_budget_bytes),
    ``slow_encoding`` (422: an encoding refused before decoding, slow_encodings.py),
    ``decode_timeout`` (422: past Settings.decode_deadline_s of CPU time, decoding.py).
    """

    STATUS: ClassVar[dict[str, int]] = {
        "empty": 422,
        "undecodable": 422,
        "too_elongated": 422,
        "unsupported_format": 415,
        "unsupported_mode": 415,
        "too_large": 413,
        "over_budget": 413,
        "slow_encoding": 422,
        "decode_timeout": 422,
    }

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.http_status = self.STATUS[code]

    def __str__(self) -> str:
        return self.message


class ClusterUnavailable(InferenceError):
    """The Ray Serve cluster (CONVATLAS_INFERENCE_BACKEND=ray) cannot answer now: it cannot be
    reached, the net has no live replica, or none answered in time. Its replicas restart by
    themselves, so a retry after ``retry_after_s`` is expected to work."""

    http_status = 503
    code = "cluster_unavailable"

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason, retry_after_s)
        self.reason = reason
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        return self.reason
