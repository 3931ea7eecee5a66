"""A small HTTP/1.1 client on asyncio for loopback load: one connection per request, bytes
exactly as given, the body sent in chunks (with pauses, or stopped as soon as the server
answers), and every answer timed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

LOOPBACK = "127.0.0.1"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Reply:
    status: int  # 0 when no answer came: see ``error``
    headers: dict[str, str]
    body: bytes
    seconds: float
    sent: int  # body bytes sent before the answer
    error: str | None = None

    def code(self) -> str | None:
        """The error envelope's code, if the answer is one."""
        return self._error_field("code")

    def problem(self) -> str | None:
        """An image refusal's precise reason (``over_budget``, ``slow_encoding``, ...)."""
        return self._error_field("problem")

    def _error_field(self, name: str) -> str | None:
        try:
            payload: Any = json.loads(self.body)
        except ValueError:
            return None
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            value = payload["error"].get(name)
            return value if isinstance(value, str) else None
        return None

    @property
    def retry_after(self) -> bool:
        return self.headers.get("retry-after", "").isdigit()


def head(method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LOOPBACK}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def multipart(data: bytes, field_name: str = "image") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    disposition = f'form-data; name="{field_name}"; filename="upload"'
    body = (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload_request(path: str, picture: bytes) -> tuple[bytes, list[bytes]]:
    body, content_type = multipart(picture)
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    return head("POST", path, headers), [body]


async def exchange(
    port: int,
    request_head: bytes,
    body: Iterable[bytes] | AsyncIterator[bytes] = (),
    timeout_s: float = 120.0,
) -> Reply:
    """Send one request and read its answer; connection failures become a Reply with status 0.
    The answer is read while the body is sent, and sending stops as soon as it arrives."""
    started = time.perf_counter()
    sent = 0
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
            answer = asyncio.ensure_future(_read_answer(reader))
            try:
                writer.write(request_head)
                sent = await _send_body(writer, body, answer)
                status, headers, payload = await answer
            finally:
                answer.cancel()
                writer.close()
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
        return Reply(0, {}, b"", time.perf_counter() - started, sent, type(error).__name__)
    return Reply(status, headers, payload, time.perf_counter() - started, sent)


async def _send_body(
    writer: asyncio.StreamWriter,
    body: Iterable[bytes] | AsyncIterator[bytes],
    answer: asyncio.Future[Any],
) -> int:
    """The body's chunks until the server answers (a refusal before the end) or stops
    reading; the bytes sent."""
    sent = 0
    chunks = body if isinstance(body, AsyncIterator) else _aiter(body)
    async for chunk in chunks:
        if answer.done():
            break
        writer.write(chunk)
        drained = asyncio.ensure_future(writer.drain())
        await asyncio.wait({drained, answer}, return_when=asyncio.FIRST_COMPLETED)
        if not drained.done():
            drained.cancel()
            break
        if drained.exception() is not None:
            break  # reset by the server: its answer, if any, is in the reader
        sent += len(chunk)
    return sent


async def _aiter(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    return int(lines[0].split()[1]), headers, await reader.readexactly(length)


async def trickle(data: bytes, every_s: float) -> AsyncIterator[bytes]:
    """``data`` one byte at a time, ``every_s`` apart: a slow (or hostile) client."""
    for index in range(len(data)):
        yield data[index : index + 1]
        await asyncio.sleep(every_s)


def chunked(total: int, prefix: bytes = b"", size: int = 256 * 1024) -> Iterable[bytes]:
    """``prefix`` then ``total`` bytes of x in chunked framing, made as they are sent."""
    if prefix:
        yield f"{len(prefix):x}\r\n".encode() + prefix + b"\r\n"
    block = f"{size:x}\r\n".encode() + b"x" * size + b"\r\n"
    for _ in range(total // size):
        yield block
    yield b"0\r\n\r\n"


def plain(total: int, prefix: bytes = b"", size: int = 256 * 1024) -> Iterable[bytes]:
    if prefix:
        yield prefix
    block = b"x" * size
    for _ in range(total // size):
        yield block


@dataclass
class Probes:
    """GETs of ``paths`` in turn every ``every_s`` while a load runs: each answer's latency."""

    port: int
    paths: list[str]
    every_s: float = 0.1
    replies: dict[str, list[Reply]] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        turn = 0
        while not stop.is_set():
            path = self.paths[turn % len(self.paths)]
            reply = await exchange(self.port, head("GET", path, {"Accept": "text/html"}), (), 10)
            self.replies.setdefault(path, []).append(reply)
            turn += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_s)

    def all(self) -> list[Reply]:
        return [reply for replies in self.replies.values() for reply in replies]
