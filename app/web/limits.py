"""What the server admits, enforced before a route does any work. Pure ASGI, so nothing is
buffered here and every route, /docs, /openapi.json and /static included, is covered.

- ``BodyLimitMiddleware``: a body over its path's limit gets 413, a declared Content-Length as
  soon as the headers arrive, a chunked body the moment the bytes read pass the limit; a body
  still arriving ``body_timeout_s`` after the headers gets 408; a Content-Length that is not a
  number gets 400. A route that answers without reading its body (a 404, a refusal) has the
  rest read and dropped first, within the same limits, so a client always gets its answer and
  an unread 1 GiB body still ends in 413.
- ``UploadAdmissionMiddleware``: at most ``max_concurrent_uploads`` uploads at once; more get
  503 with Retry-After at once, so uploads can never take every worker thread from the pages.
- ``DrainMiddleware``: after SIGTERM, new requests get 503, and those in flight get
  ``shutdown_grace_s`` to finish; any still unanswered then gets 503 with Retry-After.

What the HTTP parser itself refuses (a request that is not HTTP/1.1, a head too large) and how a
refused connection is closed are in ``serve.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import NoReturn

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings
from app.web.errors import HTTP_CODES, error_response

PREDICT_PREFIX = "/api/predict"
ANALYZE_PREFIX = "/api/analyze"
# Refused requests close their connection: the rest of an oversized body is never read.
CLOSE = {"Connection": "close"}
# How long an overloaded or draining client is asked to wait before it tries again.
RETRY_AFTER_S = 2


def body_limit(path: str, settings: Settings) -> int:
    """The most bytes a request body to ``path`` may have."""
    if path.startswith(PREDICT_PREFIX):
        return settings.max_body_predict
    if path.startswith(ANALYZE_PREFIX):
        return settings.max_body_analyze
    return settings.max_body_default


class RequestRefused(StarletteHTTPException):
    """Raised from ``receive()`` inside a route when its body passes a limit; the app's error
    handlers render it as the envelope (errors.py), with ``Connection: close``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message, headers=CLOSE)

    @property
    def code(self) -> str:
        return HTTP_CODES[self.status_code]


def too_large(limit: int) -> RequestRefused:
    return RequestRefused(413, f"the request body is over {limit:,} bytes")


def too_slow(timeout_s: float) -> RequestRefused:
    return RequestRefused(408, f"the request body did not arrive within {timeout_s:g} s")


async def send_refusal(scope: Scope, receive: Receive, send: Send, refusal: RequestRefused) -> None:
    response = error_response(refusal.status_code, refusal.code, str(refusal.detail), CLOSE)
    await response(scope, receive, send)


def declared_length(headers: Headers) -> int | None:
    """The Content-Length, None when there is none; 400 unless it is one whole number."""
    values = headers.getlist("content-length")
    if not values:
        return None
    if len(set(values)) != 1 or not values[0].isascii() or not values[0].isdigit():
        raise RequestRefused(400, "Content-Length is not a whole number of bytes")
    return int(values[0])


@dataclass
class BodyState:
    """One request's body as the app reads it."""

    limit: int
    deadline: float  # time.monotonic() by which the last byte must have arrived
    timeout_s: float
    finished: bool  # the last chunk (or the disconnect) has been read
    received: int = 0
    refused: RequestRefused | None = None

    def count(self, message: Message) -> None:
        if message["type"] == "http.disconnect":
            self.finished = True
            return
        self.received += len(message.get("body", b""))
        self.finished = not message.get("more_body", False)
        if self.received > self.limit:
            self.refuse(too_large(self.limit))

    def refuse(self, refusal: RequestRefused) -> NoReturn:
        self.refused = refusal
        raise refusal


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = body_limit(scope["path"], self.settings)
        try:
            declared = declared_length(headers)
            if declared is not None and declared > limit:
                raise too_large(limit)
        except RequestRefused as refusal:
            await send_refusal(scope, receive, send, refusal)
            return
        has_body = bool(declared) or "transfer-encoding" in headers
        timeout_s = self.settings.body_timeout_s
        state = BodyState(limit, time.monotonic() + timeout_s, timeout_s, finished=not has_body)
        await self._guarded(scope, state, receive, send)

    async def _guarded(self, scope: Scope, state: BodyState, receive: Receive, send: Send) -> None:
        bounded = bounded_receive(state, receive)
        started = replaced = False

        async def checked_send(message: Message) -> None:
            """Before the app's answer starts, the rest of its body is read and dropped; if that
            passes a limit, the refusal is sent instead and the app's answer is dropped."""
            nonlocal started, replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                started = True
                with contextlib.suppress(RequestRefused):
                    await read_rest(state, bounded)
                if state.refused is not None and not is_refusal(message, state.refused):
                    replaced = True
                    await send_refusal(scope, receive, send, state.refused)
                    return
                if state.refused is not None:
                    MutableHeaders(scope=message).update(CLOSE)
            await send(message)

        try:
            await self.app(scope, bounded, checked_send)
        except RequestRefused as refusal:  # raised where no error handler caught it
            if started:
                raise
            await send_refusal(scope, receive, send, refusal)


def is_refusal(message: Message, refusal: RequestRefused) -> bool:
    """Whether the app's answer is already the refusal (its error handler rendered it)."""
    status: int = message["status"]
    return status == refusal.status_code


def bounded_receive(state: BodyState, receive: Receive) -> Receive:
    """``receive`` that counts the body against its limit and its deadline."""

    async def bounded() -> Message:
        if state.finished or state.refused is not None:
            return await receive()  # e.g. a response listening for the client to disconnect
        try:
            async with asyncio.timeout(state.deadline - time.monotonic()):
                message = await receive()
        except TimeoutError:
            state.refuse(too_slow(state.timeout_s))
        state.count(message)
        return message

    return bounded


async def read_rest(state: BodyState, receive: Receive) -> None:
    """Read and drop what the app left of the body, within its limit and deadline."""
    while not state.finished and state.refused is None:
        await receive()


class UploadAdmissionMiddleware:
    """At most ``max_concurrent_uploads`` uploads in the app at once. An upload holds a worker
    thread while it decodes and waits for its batch; without this bound a crowd of uploads takes
    all 40 of them and a page or a table waits behind the inference queue."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.capacity = settings.max_concurrent_uploads
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_upload(scope):
            await self.app(scope, receive, send)
            return
        if self.active >= self.capacity:
            await overloaded(self.capacity)(scope, receive, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


def is_upload(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path: str = scope["path"]
    return path.startswith(PREDICT_PREFIX)


def overloaded(capacity: int) -> ASGIApp:
    reason = f"{capacity} uploads are being handled already"
    return error_response(
        503,
        "overloaded",
        f"too many pictures at once: {reason}; try again in {RETRY_AFTER_S} s",
        {"Retry-After": str(RETRY_AFTER_S)},
        reason=reason,
        retry_after_s=RETRY_AFTER_S,
    )


def shutting_down(message: str) -> ASGIApp:
    return error_response(
        503,
        "shutting_down",
        message,
        {"Retry-After": str(RETRY_AFTER_S), **CLOSE},
        retry_after_s=RETRY_AFTER_S,
    )


class Drain:
    """Shutdown as the server sees it: ``begin()`` when SIGTERM (or SIGINT) arrives, and
    ``shutdown_grace_s`` later the deadline for the requests still in flight."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.draining = False
        self._deadlines: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def begin(self) -> None:
        """Refuse new requests now; answer the unanswered in flight when the grace is over."""
        if self.draining:
            return
        self.draining = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._arm)

    def _arm(self) -> None:
        assert self._loop is not None
        self._loop.call_later(self.grace_s, self.expire)

    def expire(self) -> None:
        for deadline in self._deadlines:
            if not deadline.done():
                deadline.set_result(None)

    @contextlib.contextmanager
    def tracking(self) -> Iterator[asyncio.Future[None]]:
        """A future that completes when the grace period of a shutdown is over."""
        self._loop = asyncio.get_running_loop()
        deadline = self._loop.create_future()
        self._deadlines.add(deadline)
        try:
            yield deadline
        finally:
            self._deadlines.discard(deadline)

    @contextlib.contextmanager
    def on_signals(self) -> Iterator[None]:
        """Begin draining on SIGTERM and SIGINT, then hand the signal to the server's own
        handler (uvicorn's, which stops accepting and waits for the requests in flight).
        Signals can only be handled in the main thread: elsewhere (a test client) nothing."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def handle(sig: int, frame: FrameType | None) -> None:
            self.begin()
            handler = previous[signal.Signals(sig)]
            if callable(handler):
                handler(sig, frame)

        for sig in previous:
            signal.signal(sig, handle)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                if signal.getsignal(sig) is handle:
                    signal.signal(sig, handler)


class DrainMiddleware:
    """Each request runs as a task raced against the drain deadline, so one still waiting
    (in the inference queue, say) when the grace period ends is answered 503 at once, and the
    server can finish its shutdown within the period."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.drain.draining:
            await shutting_down("the server is shutting down")(scope, receive, send)
            return
        with self.drain.tracking() as deadline:
            await self._race(scope, receive, send, deadline)

    async def _race(
        self, scope: Scope, receive: Receive, send: Send, deadline: asyncio.Future[None]
    ) -> None:
        started = abandoned = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if abandoned:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, tracked_send))
        try:
            await asyncio.wait({task, deadline}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task.done() or started:
            await task  # finished, or its answer is on its way: let it end
            return
        abandoned = True
        task.add_done_callback(_forget)  # still in a worker thread: it ends on its own
        task.cancel()
        grace = f"{self.drain.grace_s:g} s"
        message = f"the server is shutting down and this request did not end within {grace}"
        await shutting_down(message)(scope, receive, send)


def _forget(task: asyncio.Future[None]) -> None:
    """Retrieve an abandoned request's outcome, so asyncio does not report it as unread."""
    if not task.cancelled():
        task.exception()
