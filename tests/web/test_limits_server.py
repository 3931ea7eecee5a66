"""The request limits against a real uvicorn server, as production runs it, over raw sockets:
what no test client can send (a negative Content-Length, a header too large, a body that stalls)
and what only a real server shows (its memory). Also the helpers test_bad_inputs.py and
test_shutdown.py share: a server process, its RSS, and a byte-exact HTTP/1.1 client.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 2.0  # a liveness bound, not a latency target: the scripts measure latency
# uvicorn as the Makefile's `run` starts it: the envelope even for h11's own 400s, and a
# backstop for the app's own drain (CONVATLAS_SHUTDOWN_GRACE_S).
SERVER_FLAGS = ["--http", "app.web.limits:EnvelopeH11Protocol", "--timeout-graceful-shutdown"]
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def proc_status(pid: int, field: str) -> int:
    """A /proc/<pid>/status figure in bytes (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def rss(self) -> int:
        return proc_status(self.process.pid, "VmRSS")

    def reset_peak(self) -> None:
        """Start a new peak: VmHWM becomes the current RSS (Linux clear_refs, mode 5)."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def peak(self) -> int:
        return proc_status(self.process.pid, "VmHWM")

    def healthy(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/healthz", timeout=PROBE_TIMEOUT_S)
        except httpx.TransportError:
            return False
        return response.status_code == 200 and response.json() == {"status": "ok"}

    def file_descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))


def server_env(models_root: Path, extra: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CONVATLAS_MODELS_DIR": str(models_root),
        "CONVATLAS_BUILD_ON_START": "0",
        "CONVATLAS_PROVIDERS": "cpu",
        **extra,
    }


def start_server(
    models_root: Path, extra_env: dict[str, str] | None = None, graceful_s: float = 30
) -> LiveServer:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", LOOPBACK]
    command += ["--port", str(port), *SERVER_FLAGS, str(graceful_s)]
    command += ["--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=server_env(models_root, extra_env or {}), stdin=subprocess.DEVNULL
    )
    server = LiveServer(process, port)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"uvicorn was not ready within {START_TIMEOUT_S} s")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextmanager
def serving(models_root: Path, extra_env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    server = start_server(models_root, extra_env)
    try:
        yield server
    finally:
        stop_server(server)


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
    with serving(models_root, {"CONVATLAS_BODY_TIMEOUT_S": "1"}) as server:
        yield server


@pytest.mark.parametrize("declared", ["-5", "ten", "0x10", "1 2"])
def test_h11s_own_400_is_the_envelope(quick_timeout_server: LiveServer, declared: str) -> None:
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


def test_a_chunked_body_to_a_route_that_reads_none_still_ends_in_413(
    quick_timeout_server: LiveServer,
) -> None:
    head = request_head("GET", "/healthz", {"Transfer-Encoding": "chunked"})
    reply = exchange(quick_timeout_server.port, head, chunked(1024 * MIB))
    assert (reply.status, reply.error()["code"]) == (413, "payload_too_large")
    assert reply.sent < 16 * MIB  # the 1 MiB limit, plus what the loopback buffers held
