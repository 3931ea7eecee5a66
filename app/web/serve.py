"""How the server runs: uvicorn's httptools protocol on uvloop, with four changes of ours.

httptools (llhttp) and uvloop roughly double what one process answers per second compared with
uvicorn's pure-Python h11 parser on asyncio. ``ConvAtlasHttpProtocol`` adds what h11 gave for
free, and what a classroom's clients need:

- **Its own refusals are the envelope.** A request llhttp cannot parse (a negative or
  non-numeric Content-Length, something that is not HTTP) gets the JSON error envelope with the
  security headers, never uvicorn's plain text, and nothing of the request is echoed.
- **A bounded request head.** llhttp sets no limit on the URL and headers, so a client could
  grow them without end; past ``Settings.max_header_bytes`` the request gets 431.
- **A request head in bounded time.** uvicorn times out only the idle wait between keep-alive
  requests: a client that opens a connection and sends nothing, or dribbles its headers a byte
  at a time, would hold the connection for ever. The head must arrive within
  ``Settings.head_timeout_s`` (from the connection's opening, or the request's first byte);
  past that, a begun request gets 408 and a silent connection is closed.
- **Lingering close.** A connection the server closes while the client is still sending (after
  a 413, a 408, a 400) would be reset by the kernel, and a reset can destroy the answer before
  the client reads it. So the server first half-closes (its FIN follows the answer), then reads
  and drops whatever still arrives, for at most ``Settings.linger_s``, as nginx does.

``serve()`` runs it all; ``convatlas serve`` (the README's ``make run``) calls it.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import Settings, get_settings
from app.web.errors import envelope
from app.web.security import HEADERS, PAGE_POLICY


class HeadTooLarge(Exception):
    """Raised from a parser callback: llhttp then stops and uvicorn calls send_400_response."""


class LingeringTransport:
    """The connection's transport, whose ``close()`` lingers (see the module's docstring).
    Everything else is the real transport's."""

    def __init__(self, transport: asyncio.Transport, linger_s: float) -> None:
        self._transport = transport
        self._linger_s = linger_s
        self._timer: asyncio.TimerHandle | None = None
        self.lingering = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self.lingering or self._transport.is_closing():
            return
        if self._linger_s <= 0 or not self._transport.can_write_eof():
            self._transport.close()
            return
        self.lingering = True
        self._transport.resume_reading()  # uvicorn pauses reading while a body waits unread
        self._transport.write_eof()  # sent once the answer is flushed
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._linger_s, self._transport.close)

    def abort(self) -> None:
        self.stop_lingering()
        self._transport.abort()

    def stop_lingering_from_now(self) -> None:
        """No lingering from now on; one that has begun ends at once."""
        self._linger_s = 0
        if self.lingering:
            self.stop_lingering()

    def stop_lingering(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport.close()


def refusal_bytes(status: HTTPStatus, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer carrying the envelope, written before any ASGI app runs."""
    body = json.dumps(envelope(code, message)).encode()
    headers = {
        "content-type": "application/json",
        "content-length": str(len(body)),
        "connection": "close",
        "content-security-policy": PAGE_POLICY,
        **{name.lower(): value for name, value in HEADERS.items()},
    }
    head = [f"HTTP/1.1 {status.value} {status.phrase}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class ConvAtlasHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol: envelope refusals, a head bounded in size and in time,
    lingering close."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings: Settings = get_settings()
        self.max_head_bytes = settings.max_header_bytes
        self.linger_s = settings.linger_s
        self.head_timeout_s = settings.head_timeout_s
        self.head_bytes = 0
        self.head_too_large = False
        self.head_begun = False
        self.head_timer: asyncio.TimerHandle | None = None
        self.closer: LingeringTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.closer = LingeringTransport(cast(asyncio.Transport, transport), self.linger_s)
        super().connection_made(cast(asyncio.Transport, self.closer))
        self._await_head()

    def data_received(self, data: bytes) -> None:
        if self.closer is not None and self.closer.lingering:
            return  # read only so that the client is not reset; dropped
        if self.head_timer is None and self._between_requests():
            # uvicorn stops its keep-alive timer on any byte, and llhttp skips the blank lines
            # a client may send between requests without beginning a message: a CRLF now and
            # then would otherwise hold the connection for ever.
            self._await_head()
        super().data_received(data)

    def _between_requests(self) -> bool:
        return not self.pipeline and (self.cycle is None or self.cycle.response_complete)

    def eof_received(self) -> None:
        if self.closer is not None and self.closer.lingering:
            self.closer.stop_lingering()  # the client is done sending: close now

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        if self.closer is not None and self.closer.lingering:
            self.closer.stop_lingering()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """The server is stopping: close without lingering, so that the exit stays within the
        grace period (a client still sending then gets a reset, as it would anyway)."""
        if self.closer is not None:
            self.closer.stop_lingering_from_now()
        super().shutdown()

    def on_message_begin(self) -> None:
        self.head_bytes = 0
        self.head_begun = True
        if self.head_timer is None:  # a keep-alive connection's next request
            self._await_head()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._head_arrived()
        super().on_headers_complete()

    def _await_head(self) -> None:
        self.head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _head_arrived(self) -> None:
        self.head_begun = False
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a pipelined head is late: close after this answer
            return
        if self.head_begun:
            timeout = f"{self.head_timeout_s:g} s"
            message = f"the request line and headers did not arrive within {timeout}"
            self.transport.write(
                refusal_bytes(HTTPStatus.REQUEST_TIMEOUT, "request_timeout", message)
            )
        self.transport.close()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > self.max_head_bytes:
            self.head_too_large = True
            raise HeadTooLarge

    def send_400_response(self, msg: str) -> None:  # noqa: ARG002 (llhttp's reason is not echoed)
        if self.head_too_large:
            limit = self.max_head_bytes
            answer = refusal_bytes(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request_header_fields_too_large",
                f"the request line and headers are over {limit} bytes",
            )
        else:
            answer = refusal_bytes(
                HTTPStatus.BAD_REQUEST, "bad_request", "the request is not valid HTTP/1.1"
            )
        self.transport.write(answer)
        self.transport.close()


def serve(
    host: str,
    port: int,
    *,
    log_level: str = "info",
    access_log: bool = True,
    graceful_backstop_s: float,
) -> None:
    """Serve app.main:app as production does, until SIGTERM or Ctrl-C. uvicorn's graceful
    shutdown timeout is only a backstop behind the app's own grace period
    (Settings.shutdown_grace_s), which answers whatever is still in flight when it ends."""
    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        http=ConvAtlasHttpProtocol,
        loop="uvloop",
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=round(graceful_backstop_s),
        server_header=False,  # what serves the API is not the client's business
    )
