"""The request limits against a real uvicorn server, as production runs it, over raw sockets:
what no test client can send (a negative Content-Length, a header too large, a body that stalls)
and what only a real server shows (its memory). Also the helpers test_bad_inputs.py and
test_shutdown.py share: the server (scripts/liveserver.py) on a test model repository, and a
byte-exact HTTP/1.1 client.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts import liveserver
from scripts.liveserver import LOOPBACK, ROOT, LiveServer, server_env

__all__ = ["ROOT"]  # test_bad_inputs.py and test_fuzz.py take it from here

MIB = 1024 * 1024
HEAD_TIMEOUT_S = 1.0  # the quick server's


def start_server(models_root: Path, extra_env: dict[str, str] | None = None) -> LiveServer:
    return liveserver.start(server_env(models_root, extra_env))


def stop_server(server: LiveServer) -> None:
    liveserver.stop(server)


@contextmanager
def serving(models_root: Path, extra_env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    with liveserver.serving(server_env(models_root, extra_env)) as server:
        yield server


# A byte-exact HTTP/1.1 client: it sends exactly what a case says, stops sending as soon as
# the server answers (as a browser does when a 413 arrives mid-upload), and reads one answer.


@dataclass
class RawReply:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client managed to send

    def error(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.body)
        assert set(payload) == {"error"}, payload
        return payload["error"]


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LOOPBACK}", "Accept: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def exchange(
    port: int, head: bytes, body: Iterable[bytes] = (), timeout_s: float = 60.0
) -> RawReply:
    deadline = time.monotonic() + timeout_s
    with socket.create_connection((LOOPBACK, port), timeout=timeout_s) as sock:
        sock.sendall(head)
        sent = 0
        for chunk in body:
            if time.monotonic() > deadline or answered(sock):
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed: read what it said
            sent += len(chunk)
        return read_reply(sock, deadline, sent)


def answered(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def read_reply(sock: socket.socket, deadline: float, sent: int) -> RawReply:
    data = b""
    while b"\r\n\r\n" not in data:
        data += receive_some(sock, deadline)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        body += receive_some(sock, deadline)
    return RawReply(int(lines[0].split()[1]), headers, body[:length], sent)


def receive_some(sock: socket.socket, deadline: float) -> bytes:
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("the server closed the connection without an answer")
    return chunk


def chunked(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body of ``total`` bytes in HTTP/1.1 chunked framing, made as it is sent."""
    block = b"x" * size
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + block + b"\r\n"
    yield b"0\r\n\r\n"


def plain(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    block = b"x" * size
    for start in range(0, total, size):
        yield block[: min(size, total - start)]


# The checks only a real server can show.


@pytest.fixture(scope="module")
def quick_timeout_server(models_root: Path) -> Iterator[LiveServer]:
    env = {"CONVATLAS_BODY_TIMEOUT_S": "1", "CONVATLAS_HEAD_TIMEOUT_S": str(HEAD_TIMEOUT_S)}
    with serving(models_root, env) as server:
        yield server


@pytest.mark.parametrize("declared", ["-5", "ten", "0x10", "1 2"])
def test_the_parsers_own_400_is_the_envelope(
    quick_timeout_server: LiveServer, declared: str
) -> None:
    head = request_head("POST", "/api/analyze", {"Content-Length": declared})
    reply = exchange(quick_timeout_server.port, head, [b"{}"])
    assert (reply.status, reply.error()["code"]) == (400, "bad_request")
    assert reply.headers["content-security-policy"].startswith("default-src 'none'")
    assert declared.encode() not in reply.body


def test_a_request_that_is_not_http_is_the_400_envelope(quick_timeout_server: LiveServer) -> None:
    reply = exchange(quick_timeout_server.port, b"<script>alert(1)</script>\r\n\r\n")
    assert (reply.status, reply.error()["code"]) == (400, "bad_request")
    assert b"script" not in reply.body


def test_a_body_that_stalls_gets_408(quick_timeout_server: LiveServer) -> None:
    def trickle() -> Iterator[bytes]:
        for _ in range(30):
            yield b" "
            time.sleep(0.1)

    head = request_head("POST", "/api/analyze", {"Content-Length": "1000"})
    reply = exchange(quick_timeout_server.port, head, trickle())
    assert (reply.status, reply.error()["code"]) == (408, "request_timeout")
    assert reply.headers["connection"] == "close"
    assert reply.sent < 30
    assert quick_timeout_server.healthy()


def test_headers_that_dribble_in_get_408(quick_timeout_server: LiveServer) -> None:
    """Slowloris: a byte of header every 0.1 s would hold the connection for ever."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
    with socket.create_connection((LOOPBACK, quick_timeout_server.port), timeout=30) as sock:
        sock.sendall(head)
        sent = 0
        while not answered(sock) and sent < 300:
            sock.sendall(b"a")
            sent += 1
            time.sleep(0.1)
        reply = read_reply(sock, time.monotonic() + 30, sent)
    assert (reply.status, reply.error()["code"]) == (408, "request_timeout")
    assert reply.headers["connection"] == "close"
    assert sent < 300
    assert quick_timeout_server.healthy()


def test_a_connection_that_sends_nothing_is_closed(quick_timeout_server: LiveServer) -> None:
    with socket.create_connection((LOOPBACK, quick_timeout_server.port), timeout=30) as sock:
        assert sock.recv(1) == b""  # closed by the server, with no answer to an empty request


def test_blank_lines_between_requests_do_not_hold_the_connection(
    quick_timeout_server: LiveServer,
) -> None:
    """llhttp skips a CRLF between requests without beginning one, and uvicorn's keep-alive
    timer stops at any byte: the head timeout must still close the connection."""
    with socket.create_connection((LOOPBACK, quick_timeout_server.port), timeout=30) as sock:
        sock.sendall(request_head("GET", "/healthz", {}))
        assert read_reply(sock, time.monotonic() + 30, 0).status == 200
        sock.sendall(b"\r\n")
        assert sock.recv(1) == b""  # closed, with nothing sent for the blank line


def test_idle_time_between_keep_alive_requests_is_not_the_heads(
    quick_timeout_server: LiveServer,
) -> None:
    head = request_head("GET", "/healthz", {})
    with socket.create_connection((LOOPBACK, quick_timeout_server.port), timeout=30) as sock:
        for _ in range(2):
            sock.sendall(head)
            reply = read_reply(sock, time.monotonic() + 30, 0)
            assert reply.status == 200
            assert "close" not in reply.headers.get("connection", "")
            time.sleep(HEAD_TIMEOUT_S * 1.5)  # within uvicorn's keep-alive (5 s)


def test_head_gets_the_gets_headers_and_no_body(quick_timeout_server: LiveServer) -> None:
    head = request_head("HEAD", "/nets/vgg16", {"Accept": "text/html", "Connection": "close"})
    with socket.create_connection((LOOPBACK, quick_timeout_server.port), timeout=30) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert status_line.split()[1] == b"200"
    assert b"content-length: " in headers.lower()
    assert body == b""


def test_a_chunked_body_to_a_route_that_reads_none_still_ends_in_413(
    quick_timeout_server: LiveServer,
) -> None:
    head = request_head("GET", "/healthz", {"Transfer-Encoding": "chunked"})
    reply = exchange(quick_timeout_server.port, head, chunked(1024 * MIB))
    assert (reply.status, reply.error()["code"]) == (413, "payload_too_large")
    assert reply.sent < 16 * MIB  # the 1 MiB limit, plus what the loopback buffers held


def test_a_head_over_the_limit_gets_431_and_the_server_stays_small(
    quick_timeout_server: LiveServer,
) -> None:
    """The HTTP parser bounds nothing itself: 8 MiB of headers would be held in memory."""
    quick_timeout_server.reset_peak()
    before = quick_timeout_server.rss()
    filler = "a" * 8000
    head = request_head("GET", "/healthz", {f"X-Filler-{n}": filler for n in range(1024)})
    reply = exchange(quick_timeout_server.port, head)
    assert (reply.status, reply.error()["code"]) == (431, "request_header_fields_too_large")
    assert reply.headers["connection"] == "close"
    assert reply.headers["content-security-policy"].startswith("default-src 'none'")
    assert filler.encode() not in reply.body
    assert quick_timeout_server.peak() - before < 16 * MIB
    assert quick_timeout_server.healthy()


def test_a_head_just_under_the_limit_is_served(quick_timeout_server: LiveServer) -> None:
    head = request_head("GET", "/healthz", {"X-Filler": "a" * 15_000})
    assert exchange(quick_timeout_server.port, head).status == 200


def test_a_client_that_sends_its_whole_body_before_reading_still_gets_its_413(
    quick_timeout_server: LiveServer,
) -> None:
    """Lingering close: the server refuses at the headers, then reads and drops the body it
    will never use, so the client's writes succeed and the 413 waits for it, not a reset."""
    body = 8 * MIB
    head = request_head("POST", "/api/analyze", {"Content-Length": str(body)})
    deadline = time.monotonic() + 30
    with socket.create_connection((LOOPBACK, quick_timeout_server.port), timeout=30) as sock:
        sock.sendall(head)
        for chunk in plain(body):
            sock.sendall(chunk)  # a reset would raise here, or in the read below
        reply = read_reply(sock, deadline, body)
        sock.settimeout(5)
        assert sock.recv(1) == b""  # then the server closes, cleanly
    assert (reply.status, reply.error()["code"]) == (413, "payload_too_large")
    assert reply.headers["connection"] == "close"
