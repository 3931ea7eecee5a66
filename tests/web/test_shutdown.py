"""SIGTERM with requests in flight, on a real uvicorn server: each one finishes or gets a 503
with Retry-After, and the process exits within its grace period (Settings.shutdown_grace_s)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from scripts.liveserver import LiveServer, wait_for

from .test_limits_server import RawReply, exchange, request_head, start_server, stop_server

GRACE_S = 3.0
# What the process may take beyond the grace period: its lifespan shutdown and exit. A bound
# that says "it exits", generous enough for a loaded 2-core CI machine.
EXIT_SLACK_S = 10.0
NET = "alexnet-lecture"
BOUNDARY = "shutdown-test"
UPLOADS = 12
STALLED = 2
# uvicorn shuts down gracefully, then raises the signal it caught again, as a process that
# handles SIGTERM should: its exit status says "ended by SIGTERM". That the requests in flight
# were answered is what tells this from a process killed outright.
GRACEFUL_EXIT = -signal.SIGTERM


def picture() -> bytes:
    rng = np.random.default_rng(11)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def upload_request(data: bytes) -> tuple[bytes, bytes]:
    disposition = 'form-data; name="image"; filename="a.jpg"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n"
    body = head.encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(len(body)),
    }
    return request_head("POST", f"/api/predict/{NET}", headers), body


def stalling(body: bytes, mid_body: threading.Event, resume: threading.Event) -> Iterator[bytes]:
    """Half the body, then nothing until ``resume``: still uploading when shutdown begins.
    ``mid_body`` is set once the first half is sent (exchange asks for the next chunk only
    after sending the one before)."""
    yield body[: len(body) // 2]
    mid_body.set()
    resume.wait(GRACE_S + EXIT_SLACK_S)
    yield body[len(body) // 2 :]


def sent(body: bytes, done: threading.Event) -> Iterator[bytes]:
    """The whole body; ``done`` is set once it is sent."""
    yield body
    done.set()


ESTABLISHED = "01"  # the state column of /proc/net/tcp


def open_connections(server: LiveServer) -> int:
    """Connections the server process has accepted and its clients still hold open: sockets
    among its file descriptors that /proc/net/tcp lists as established on its port (one the
    kernel queued but the server has not accepted yet is not among its descriptors)."""
    inodes = set()
    for fd in Path(f"/proc/{server.pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):  # closed since the listing
            link = os.readlink(fd)
            if link.startswith("socket:["):
                inodes.add(link.removeprefix("socket:[").removesuffix("]"))
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        port = int(fields[1].rpartition(":")[2], 16)
        count += fields[3] == ESTABLISHED and port == server.port and fields[9] in inodes
    return count


def test_sigterm_lets_requests_in_flight_finish_or_get_503_and_exits_in_time(
    models_root: Path,
) -> None:
    server = start_server(models_root, {"CONVATLAS_SHUTDOWN_GRACE_S": str(GRACE_S)})
    try:
        head, body = upload_request(picture())
        assert exchange(server.port, head, [body]).status == 200  # the session is loaded
        resume = threading.Event()
        with ThreadPoolExecutor(UPLOADS + STALLED) as pool:
            halves = [threading.Event() for _ in range(STALLED)]
            stalled = [
                pool.submit(exchange, server.port, head, stalling(body, half, resume))
                for half in halves
            ]
            # The stalled ones are mid-body: their first halves are sent and the server has
            # accepted their connections.
            wait_for(
                lambda: (
                    all(half.is_set() for half in halves) and open_connections(server) >= STALLED
                ),
                "the stalled uploads mid-body",
            )
            whole = [threading.Event() for _ in range(UPLOADS)]
            uploads = [pool.submit(exchange, server.port, head, sent(body, done)) for done in whole]
            # Every upload is sent and the server holds its connection, or has answered it.
            wait_for(
                lambda: (
                    all(done.is_set() for done in whole)
                    and open_connections(server)
                    >= STALLED + sum(1 for future in uploads if not future.done())
                ),
                "every upload sent and accepted",
            )
            server.process.send_signal(signal.SIGTERM)
            sent_at = time.monotonic()
            exit_code = server.process.wait(timeout=GRACE_S + EXIT_SLACK_S)
            exited_after = time.monotonic() - sent_at
            resume.set()
            replies = [reply(future) for future in [*uploads, *stalled]]
    finally:
        if server.process.poll() is None:
            stop_server(server)
    assert exit_code == GRACEFUL_EXIT
    assert exited_after < GRACE_S + EXIT_SLACK_S
    for answer in replies:
        assert answer.status in (200, 503), answer.body[:300]
        if answer.status == 503:
            assert answer.error()["code"] in ("shutting_down", "overloaded")
            assert int(answer.headers["retry-after"]) >= 1
    stalled_codes = [answer.error()["code"] for answer in replies[UPLOADS:]]
    assert stalled_codes == ["shutting_down"] * STALLED


def reply(future: Future[RawReply]) -> RawReply:
    return future.result(timeout=GRACE_S + EXIT_SLACK_S)


def test_a_server_without_requests_exits_at_once_on_sigterm(models_root: Path) -> None:
    server = start_server(models_root, {"CONVATLAS_SHUTDOWN_GRACE_S": "30"})
    sent_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        assert server.process.wait(timeout=EXIT_SLACK_S) == GRACEFUL_EXIT
    except subprocess.TimeoutExpired:
        stop_server(server)
        raise
    assert time.monotonic() - sent_at < EXIT_SLACK_S  # the grace period is not waited out
