"""A small HTTP/1.1 load generator on asyncio, for loopback only.

Each client keeps one keep-alive connection and sends its next request when the last answer has
arrived (a closed loop). A load stops by itself: after ``max_requests`` requests in all or
``max_seconds``, whichever comes first. Requests are prebuilt bytes, so the client spends its
time on the socket, not on building requests: on a 2-core machine every cycle the client burns
is one the server does not get. A client told 503 with Retry-After waits that long (within the
load's time bound) before its next request, on a new connection, as a well-behaved client does.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"
REQUEST_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    seconds: float
    started: float  # time.monotonic() when it was sent
    retry_after: float | None = None  # seconds, from a 503's Retry-After header


@dataclass
class Load:
    """What one load produced: every answer's status and latency, and how long it all took."""

    answers: list[Answer] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def ok(self) -> list[Answer]:
        return [answer for answer in self.answers if answer.status == 200]

    def per_second(self) -> float:
        return len(self.ok) / self.elapsed if self.elapsed > 0 else 0.0


def get(path: str, headers: dict[str, str] | None = None) -> bytes:
    return _request("GET", path, b"", headers or {})


def post_file(path: str, field_name: str, filename: str, content_type: str, data: bytes) -> bytes:
    """A multipart/form-data POST with one file field, as a browser's upload form sends it."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
        f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return _request("POST", path, body, headers)


def _request(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LOOPBACK}", "Accept: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def run_load(
    port: int,
    requests: list[bytes],
    *,
    clients: int,
    max_requests: int,
    max_seconds: float,
    keep_bodies: bool = False,
) -> Load:
    """``clients`` closed-loop clients; the n-th request sent is ``requests[n % len]``."""
    return asyncio.run(
        _load(port, requests, clients, max_requests, max_seconds, keep_bodies),
    )


async def _load(
    port: int,
    requests: list[bytes],
    clients: int,
    max_requests: int,
    max_seconds: float,
    keep_bodies: bool,
) -> Load:
    load = Load()
    tickets = iter(range(max_requests))
    started = time.monotonic()
    deadline = started + max_seconds

    async def client() -> None:
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for ticket in tickets:
            if time.monotonic() >= deadline:
                return
            try:
                if connection is None:
                    connection = await asyncio.open_connection(LOOPBACK, port)
                answer, keep = await asyncio.wait_for(
                    _exchange(*connection, requests[ticket % len(requests)]), REQUEST_TIMEOUT_S
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
                load.errors[type(error).__name__] += 1
                _close(connection)
                connection = None
                continue
            load.answers.append(answer if keep_bodies else _without_body(answer))
            if not keep:
                _close(connection)
                connection = None
            if answer.status == 503 and answer.retry_after:
                await asyncio.sleep(max(0.0, min(answer.retry_after, deadline - time.monotonic())))
                _close(connection)  # the server may have dropped it meanwhile (keep-alive timeout)
                connection = None
        _close(connection)

    await asyncio.gather(*(client() for _ in range(clients)))
    load.elapsed = time.monotonic() - started
    return load


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[Answer, bool]:
    """Send one request and read its answer; also whether the connection stays open."""
    sent_at = time.monotonic()
    started = time.perf_counter()
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status, headers = _parse_head(head)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    seconds = time.perf_counter() - started
    keep = headers.get("connection", "").lower() != "close"
    return Answer(status, body, seconds, sent_at, _retry_after(headers)), keep


def _retry_after(headers: dict[str, str]) -> float | None:
    try:
        return float(headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _without_body(answer: Answer) -> Answer:
    return Answer(answer.status, b"", answer.seconds, answer.started, answer.retry_after)


def _close(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
) -> None:
    if connection is not None:
        connection[1].close()
