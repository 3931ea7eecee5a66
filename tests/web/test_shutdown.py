"""SIGTERM with requests in flight, on a real uvicorn server: each one finishes or gets a 503
with Retry-After, and the process exits within its grace period (Settings.shutdown_grace_s)."""

from __future__ import annotations

import io
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

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


def stalling(body: bytes, pause_s: float) -> Iterator[bytes]:
    """Half the body, then nothing for ``pause_s``: still uploading when shutdown begins."""
    yield body[: len(body) // 2]
    time.sleep(pause_s)
    yield body[len(body) // 2 :]


def test_sigterm_lets_requests_in_flight_finish_or_get_503_and_exits_in_time(
    models_root: Path,
) -> None:
    server = start_server(models_root, {"CONVATLAS_SHUTDOWN_GRACE_S": str(GRACE_S)})
    try:
        head, body = upload_request(picture())
        assert exchange(server.port, head, [body]).status == 200  # the session is loaded
        with ThreadPoolExecutor(UPLOADS + STALLED) as pool:
            stalled = [
                pool.submit(exchange, server.port, head, stalling(body, GRACE_S + 3))
                for _ in range(STALLED)
            ]
            uploads = [pool.submit(exchange, server.port, head, [body]) for _ in range(UPLOADS)]
            time.sleep(0.3)  # the stalled ones are mid-body; some uploads are in the queue
            server.process.send_signal(signal.SIGTERM)
            sent_at = time.monotonic()
            exit_code = server.process.wait(timeout=GRACE_S + EXIT_SLACK_S)
            exited_after = time.monotonic() - sent_at
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
