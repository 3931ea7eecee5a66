"""uvicorn as production runs it, on a free loopback port, and what /proc says about it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 60.0
# The flags the Makefile's `run` target uses: the envelope for h11's own 400s, and uvicorn's
# own bound on a graceful shutdown as a backstop behind CONVATLAS_SHUTDOWN_GRACE_S.
UVICORN_FLAGS = [
    "--http", "app.web.limits:EnvelopeH11Protocol", "--timeout-graceful-shutdown", "20",
]  # fmt: skip
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    started_in_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def status_field(self, name: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) * 1024
        raise LookupError(name)

    def rss(self) -> int:
        return self.status_field("VmRSS")

    def peak(self) -> int:
        return self.status_field("VmHWM")

    def reset_peak(self) -> None:
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def get(self, path: str, timeout_s: float = 5.0) -> httpx.Response:
        return httpx.get(self.url + path, timeout=timeout_s)


def environment(models_root: Path, extra: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CONVATLAS_MODELS_DIR": str(models_root),
        "CONVATLAS_BUILD_ON_START": "0",
        "CONVATLAS_PROVIDERS": "cpu",
        **extra,
    }


def start(models_root: Path, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", LOOPBACK]
    command += ["--port", str(port), *UVICORN_FLAGS, "--log-level", "warning", "--no-access-log"]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=environment(models_root, extra_env or {}),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # the scenarios provoke warnings by design
    )
    server = Server(process, port)
    while time.monotonic() - started < START_TIMEOUT_S:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}")
        try:
            if server.get("/readyz", 1.0).status_code == 200:
                server.started_in_s = time.monotonic() - started
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    stop(server)
    raise RuntimeError(f"uvicorn was not ready within {START_TIMEOUT_S} s")


def stop(server: Server) -> None:
    if server.process.poll() is not None:
        return
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextmanager
def serving(models_root: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    server = start(models_root, extra_env)
    try:
        yield server
    finally:
        stop(server)


@dataclass
class Sampler:
    """The server's RSS and open file descriptors every ``every_s``, in a thread."""

    server: Server
    every_s: float = 0.1
    rss: list[int] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.rss.append(self.server.rss())
                self.fds.append(self.server.fds())
            except (OSError, LookupError):
                return  # the process has gone
            self._stop.wait(self.every_s)
