"""A real ConvAtlas server on a free loopback port, started as `make run` starts it, and what
/proc says about it. The one copy that the tests (tests/web, tests/e2e), `make bench` and
`make reliability` share.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 60.0
# A liveness probe waits this long for its answer: a bound that says "it answers", never "it
# answers fast" (the latency is measured where it matters), generous for a loaded 2-core machine.
HEALTHY_TIMEOUT_S = 30.0
# uvicorn's graceful-shutdown backstop, as `convatlas serve` defaults it.
GRACEFUL_S = 20.0
# How often the peak sampler reads the memory of the processes under a server.
PEAK_SAMPLE_S = 0.005
PSS_EVERY = 4  # reading a process's PSS walks its page tables: every 4th sample, 20 ms


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def serve_command(
    port: int, graceful_s: float = GRACEFUL_S, log_level: str = "warning"
) -> list[str]:
    """`make run`'s command (`convatlas serve`), on this port, without a line per request."""
    command = [sys.executable, "-m", "app.cli", "serve", "--host", LOOPBACK]
    command += ["--port", str(port), "--timeout-graceful-shutdown", str(graceful_s)]
    return [*command, "--log-level", log_level, "--no-access-log"]


def server_env(models_root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A server on this model repository: no background build, CPU only (reproducible)."""
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CONVATLAS_MODELS_DIR": str(models_root),
        "CONVATLAS_BUILD_ON_START": "0",
        "CONVATLAS_PROVIDERS": "cpu",
        **(extra or {}),
    }


def proc_status(pid: int, name: str) -> int:
    """A /proc/<pid>/status figure in bytes (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) * 1024
    raise LookupError(name)


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live process under it (Linux's /proc/<pid>/task/<tid>/children)."""
    found, waiting = [], [pid]
    while waiting:
        parent = waiting.pop()
        found.append(parent)
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                waiting.extend(int(child) for child in children.read_text().split())
    return found


def _pss(pid: int) -> int:
    """A process's proportional set size in bytes (0 once it has left)."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in lines if line.startswith("Pss:")), 0)


def _figures(pids: list[int], name: str) -> dict[int, int]:
    """Each live process's /proc status figure; those that left meanwhile are skipped."""
    figures = {}
    for pid in pids:
        with contextlib.suppress(OSError, LookupError):
            figures[pid] = proc_status(pid, name)
    return figures


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    port: int
    started_in_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    _peaks: dict[int, int] = field(default_factory=dict)
    _pss_peak: int = 0
    _sampler: threading.Thread | None = None
    _sampling: threading.Event = field(default_factory=threading.Event)

    def tree(self) -> list[int]:
        """The server and every process under it (its decode workers and their forkserver)."""
        return process_tree(self.pid)

    def rss(self) -> int:
        """Resident memory of the server and every process under it, summed."""
        return sum(_figures(self.tree(), "VmRSS").values())

    def pss(self) -> int:
        """Proportional set size of the server and every process under it, summed."""
        return sum(_pss(pid) for pid in self.tree())

    def reset_peak(self) -> None:
        """Start a new peak: each process's VmHWM becomes its current RSS (Linux clear_refs,
        mode 5), and a sampler keeps the last peak of every process under the server, so a
        decode worker that leaves (killed at its deadline, or retired) still counts."""
        self._stop_sampling()
        for pid in self.tree():
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")
        self._peaks = {}
        self._pss_peak = 0
        self._sampling.clear()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def peak(self) -> int:
        """Since reset_peak: the sum of each process's peak (VmHWM), those that left included:
        at least the highest the tree's memory reached (their peaks need not coincide)."""
        self._stop_sampling()
        self._record()
        return sum(self._peaks.values())

    def peak_pss(self) -> int:
        """Since reset_peak: the highest sum of the tree's proportional set sizes seen (pages
        shared between the forked decode workers counted once), sampled every 20 ms; what
        the processes together held at one moment, where peak() adds up peaks of any moment."""
        self._stop_sampling()
        return self._pss_peak

    def _sample(self) -> None:
        samples = 0
        while not self._sampling.wait(PEAK_SAMPLE_S):
            self._record()
            samples += 1
            if samples % PSS_EVERY == 0:
                self._pss_peak = max(self._pss_peak, sum(_pss(pid) for pid in self.tree()))

    def _record(self) -> None:
        for pid, hwm in _figures(self.tree(), "VmHWM").items():
            self._peaks[pid] = max(hwm, self._peaks.get(pid, 0))

    def _stop_sampling(self) -> None:
        if self._sampler is not None:
            self._sampling.set()
            self._sampler.join()
            self._sampler = None

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def get(self, path: str, timeout_s: float = 5.0) -> httpx.Response:
        return httpx.get(self.url + path, timeout=timeout_s)

    def healthy(self, timeout_s: float = HEALTHY_TIMEOUT_S) -> bool:
        try:
            response = self.get("/healthz", timeout_s)
        except httpx.TransportError:
            return False
        return response.status_code == 200 and response.json() == {"status": "ok"}


def start(
    env: dict[str, str],
    graceful_s: float = GRACEFUL_S,
    ready_path: str = "/readyz",
    stderr: int | IO[bytes] | None = None,
) -> LiveServer:
    """Start the server and wait until ``ready_path`` answers 200."""
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        serve_command(port, graceful_s), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stderr=stderr
    )
    server = LiveServer(process, port)
    while time.monotonic() - started < START_TIMEOUT_S:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if server.get(ready_path, 1.0).status_code == 200:
                server.started_in_s = time.monotonic() - started
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    stop(server)
    raise RuntimeError(f"the server was not ready within {START_TIMEOUT_S} s")


def wait_for(condition: Callable[[], bool], what: str, limit_s: float = START_TIMEOUT_S) -> None:
    """Poll until ``condition`` holds: a wait for a state, not a timing assertion (the limit
    only stops a test that would otherwise hang)."""
    give_up = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > give_up:
            raise TimeoutError(f"{what}: not within {limit_s:g} s")
        time.sleep(0.01)


def wait_verified(server: LiveServer, limit_s: float = 120.0) -> float:
    """Seconds until /readyz lists no net whose model files' sha256 is still being verified:
    the background check a server starts with reads every model file once, and a measurement
    taken meanwhile would share the CPU with it."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        nets = server.get("/readyz").json()["inference"]["integrity"]
        if all(net["state"] != "verifying" for net in nets):
            break
        time.sleep(0.1)
    return time.monotonic() - started


def stop(server: LiveServer, timeout_s: float = 30.0) -> None:
    """SIGTERM, as a supervisor stops it; SIGKILL if it has not exited after ``timeout_s``."""
    if server.process.poll() is not None:
        return
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextmanager
def serving(env: dict[str, str], graceful_s: float = GRACEFUL_S) -> Iterator[LiveServer]:
    server = start(env, graceful_s)
    try:
        yield server
    finally:
        stop(server)


@dataclass
class Sampler:
    """The server's RSS and open file descriptors every ``every_s``, in a thread."""

    server: LiveServer
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

    @property
    def peak_rss(self) -> int:
        return max(self.rss, default=0)
