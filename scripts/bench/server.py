"""A uvicorn server on a free loopback port, as `make run` starts it, and its memory over time."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scripts.bench.common import ROOT, free_port, rss_bytes

START_TIMEOUT_S = 60.0


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self) -> int:
        return rss_bytes(self.process.pid) or 0


@contextmanager
def serve(models_root: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """uvicorn app.main:app with the bench's model repository; no background build."""
    port = free_port()
    env = {
        **os.environ,
        "CONVATLAS_MODELS_DIR": str(models_root),
        "CONVATLAS_BUILD_ON_START": "false",
        "CONVATLAS_PROVIDERS": "cpu",
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
    server = Server(process, port)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {server.process.returncode}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"uvicorn was not ready within {START_TIMEOUT_S} s")


@dataclass
class RssSampler:
    """Samples a process's RSS every ``interval_s`` in a thread while the block runs."""

    pid: int
    interval_s: float = 0.05
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            if (rss := rss_bytes(self.pid)) is not None:
                self.samples.append(rss)
            self._stop.wait(self.interval_s)

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)
