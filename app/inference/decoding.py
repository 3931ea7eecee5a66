"""Decoding with a deadline: every upload is decoded and preprocessed in a worker process
(decode_worker.py), killed once it has used Settings.decode_deadline_s of CPU time, or
WALL_FACTOR times that in wall time (a machine too busy to give it the CPU).

    pool = DecodePool(settings)
    pool.prepare(image_bytes, [manifest.preprocess, ...]) -> Prepared (one tensor per step)
    pool.close()

Workers are forked from a server process that has already imported the decoder (multiprocessing's
forkserver), so starting one takes milliseconds and never copies the server's threads or ONNX
Runtime sessions. Up to Settings.decode_workers run at once, one per upload being decoded; a few
stay idle for the next uploads and the rest leave. An upload that finds every worker busy waits
up to Settings.decode_wait_s, then gets 503 with Retry-After. The memory budget every decode in
progress shares (decode_budget.py) lives here, in the server: a worker reports what its picture
needs once the header is read, and decodes only when that is reserved. Neither wait counts
against the deadline, which covers the worker's own work: header, decode, conversion, resizing.
CPU time rather than wall time, so that eight large pictures decoding at once on two cores are
not stopped for sharing them, while a picture whose decoder loops for seconds is.

Like every user of multiprocessing, a script that makes a pool guards its main module with
``if __name__ == "__main__":`` (the forkserver imports it).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING

from app.inference import decode_worker
from app.inference.decode_budget import MIB, DecodeBudget, decode_budget
from app.inference.decode_worker import (
    GO,
    HEADER_BYTES,
    READY,
    STOP,
    Done,
    Job,
    Limits,
    Needs,
    Prepared,
    send_job,
)
from app.inference.errors import ImageRejected, Overloaded
from app.repository.manifest import Preprocess

if TYPE_CHECKING:
    from app.settings import Settings

KEEP_IDLE = 2  # workers kept waiting for the next upload; more leave once done
# A decode may use Settings.decode_deadline_s of CPU time: the work its picture costs, whatever
# else the machine does. On a machine too busy to give it that time, it is stopped after this
# many times the deadline in wall time, so that an upload is answered within a bound.
WALL_FACTOR = 3
POLL_S = 0.05  # how often a waiting upload reads its worker's CPU time
# What a busy worker holds of its own besides its picture, reserved from the shared budget with
# the header's allowance (decode_worker.HEADER_BYTES): about 25 MiB of the forkserver's heap that
# CPython 3.11's reference counting copies into each forked process (tests/inference/
# test_decoding.py measures it), and its buffers.
WORKER_BYTES = 32 * MIB
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # /proc/<pid>/stat's unit of CPU time
# A new worker says it is ready within this long (forking takes milliseconds; this allows for a
# machine crowded with decodes), else the upload gets 503. The deadline starts after.
START_TIMEOUT_S = 30.0


def _preload() -> list[str]:
    """What the forkserver imports once, so every worker forked from it has it: the decoder, and
    the server's entry point, which multiprocessing runs again in each new process (a script
    through "__main__"; a module run with `python -m` by its name, so that its imports are
    already done when it runs again)."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    name = getattr(spec, "name", None)
    entry = [name] if isinstance(name, str) and not name.endswith("__main__") else []
    return ["__main__", decode_worker.__name__, *entry, f"{__package__}.forkserver_heap"]


_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(_preload())


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection

    def stop(self, kill: bool) -> None:
        """Kill it (at the deadline), or close its pipe so it leaves by itself."""
        if kill:
            self.process.kill()
        self.conn.close()
        self.process.join(timeout=5)


class DecodePool:
    def __init__(self, settings: Settings) -> None:
        self._limits = Limits(
            settings.max_image_pixels, settings.max_image_aspect, settings.decode_budget_bytes
        )
        self._budget: DecodeBudget = decode_budget(settings)
        self._deadline_s = settings.decode_deadline_s
        self._max_workers = settings.decode_workers
        self._idle: list[_Worker] = []
        self._busy = 0
        self._closed = False
        self._changed = threading.Condition()
        self.killed = 0  # workers killed at the deadline
        self.crashed = 0  # workers that died in a job (a decoder crashed, the kernel ended it)

    def prepare(self, data: bytes, steps: Sequence[Preprocess]) -> Prepared:
        """The upload as one tensor per step, or ImageRejected (4xx) saying why not, or
        Overloaded (503) when no worker or not enough of the shared memory came free in time.

        What a worker may hold before its picture's size is known (its own pages, the header's
        allowance) is reserved from the shared budget before it gets the job; the decode's
        estimate is reserved on top once the header is read."""
        memory = self._budget.memory
        with (
            memory.reserve(WORKER_BYTES + HEADER_BYTES, self._budget.wait_s),
            self._worker() as worker,
        ):
            return self._job(worker, Job(data, tuple(steps)))

    def warm(self) -> None:
        """Start the forkserver (about a second: it imports the decoder) and one idle worker
        now, so that the first upload does not wait for them. A worker that does not start is
        left to the first upload to start (and to refuse with 503 if it cannot either)."""
        try:
            worker = self._start()
        except (Overloaded, OSError):
            return
        with self._changed:
            keep = not self._closed and len(self._idle) < KEEP_IDLE
            if keep:
                self._idle.append(worker)
        if not keep:
            worker.stop(kill=False)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop(kill=True)

    @property
    def alive(self) -> int:
        with self._changed:
            return self._busy + len(self._idle)

    def _job(self, worker: _Worker, job: Job) -> Prepared:
        clock = _Clock(worker.process.pid, self._deadline_s)
        send_job(worker.conn, job)
        header = self._reply(worker, clock)
        if not isinstance(header, Needs):
            return _outcome(worker, header)
        clock.pause()  # the wait for the shared budget is not the picture's doing
        try:
            with self._budget.memory.reserve(header.nbytes, self._budget.wait_s):
                clock.resume()
                worker.conn.send(GO)
                return _outcome(worker, self._reply(worker, clock))
        except Overloaded:
            with contextlib.suppress(OSError):  # a worker that has died meanwhile is not kept
                worker.conn.send(STOP)
            raise

    def _reply(self, worker: _Worker, clock: _Clock) -> object:
        """The worker's next message, or ImageRejected when it has used up its CPU time or its
        wall time (it is killed) or has died (a decoder crashed, or the kernel ended it)."""
        while not worker.conn.poll(min(POLL_S, clock.wall_left())):
            overrun = clock.overrun()
            if overrun is not None:
                worker.stop(kill=True)
                with self._changed:
                    self.killed += 1
                raise ImageRejected(
                    "decode_timeout",
                    f"decoding this picture {overrun} and was stopped; "
                    "send it as an ordinary JPEG or PNG",
                )
        try:
            return worker.conn.recv()
        except (EOFError, OSError):
            worker.stop(kill=True)
            with self._changed:
                self.crashed += 1
            raise ImageRejected(
                "undecodable", "the decoder stopped on this picture; it may be damaged"
            ) from None

    @contextmanager
    def _worker(self) -> Iterator[_Worker]:
        worker = self._take()
        try:
            yield worker
        finally:
            self._give_back(worker)

    def _take(self) -> _Worker:
        deadline = time.monotonic() + self._budget.wait_s
        with self._changed:
            while not self._idle and self._busy >= self._max_workers:
                left = deadline - time.monotonic()
                if left <= 0:
                    reason = f"all {self._max_workers} decode workers are busy"
                    raise Overloaded(reason, retry_after_s=1)
                self._changed.wait(left)
            self._busy += 1
            idle = self._idle.pop() if self._idle else None
        if idle is not None and idle.process.is_alive():
            return idle
        if idle is not None:  # it died while it waited (the kernel's OOM killer, say)
            idle.stop(kill=True)
        try:
            return self._start()
        except BaseException:
            with self._changed:
                self._busy -= 1
                self._changed.notify()
            raise

    def _give_back(self, worker: _Worker) -> None:
        keep = worker.process.is_alive() and not worker.conn.closed
        with self._changed:
            self._busy -= 1
            keep = keep and not self._closed and len(self._idle) < KEEP_IDLE
            if keep:
                self._idle.append(worker)
            self._changed.notify()
        if not keep:
            worker.stop(kill=False)

    def _start(self) -> _Worker:
        ours, theirs = _CONTEXT.Pipe()
        process = _CONTEXT.Process(
            target=decode_worker.serve,
            args=(theirs, self._limits),
            name="convatlas-decode",
            daemon=True,
        )
        process.start()
        theirs.close()
        worker = _Worker(process, ours)
        if not (ours.poll(START_TIMEOUT_S) and _ready(ours)):
            worker.stop(kill=True)
            raise Overloaded("a decode worker did not start in time", retry_after_s=1)
        return worker


def _ready(conn: Connection) -> bool:
    try:
        return bool(conn.recv() == READY)
    except (EOFError, OSError):
        return False


class _Clock:
    """One job's CPU time (the worker's, from /proc) and wall time, against the deadline."""

    def __init__(self, pid: int | None, deadline_s: float) -> None:
        self._pid = pid
        self._deadline_s = deadline_s
        self._cpu_start = _cpu_seconds(pid)
        self._wall_left = deadline_s * WALL_FACTOR
        self._since = time.monotonic()

    def pause(self) -> None:
        self._wall_left = self.wall_left()

    def resume(self) -> None:
        self._since = time.monotonic()

    def wall_left(self) -> float:
        return max(0.0, self._wall_left - (time.monotonic() - self._since))

    def overrun(self) -> str | None:
        """What the decode has overrun, said for the upload's answer; None while within both."""
        if _cpu_seconds(self._pid) - self._cpu_start >= self._deadline_s:
            return f"used more than the {self._deadline_s:g} s of CPU time a picture may take"
        if self.wall_left() <= 0:
            wall = self._deadline_s * WALL_FACTOR
            return f"took longer than {wall:g} s (the server is busy)"
        return None


def _cpu_seconds(pid: int | None) -> float:
    """The CPU time (user + system) process ``pid`` has used; 0 where /proc cannot say (then
    only the wall time bounds a decode)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _outcome(worker: _Worker, answer: object) -> Prepared:
    """A worker's last message of a job as the tensors, or its refusal raised."""
    if isinstance(answer, Done):
        if not answer.stays:
            worker.conn.close()  # it has left: not given back to the idle ones
        answer = answer.answer
    if isinstance(answer, ImageRejected):
        raise answer
    if not isinstance(answer, Prepared):
        raise TypeError(f"a decode worker answered {type(answer).__name__}")
    return answer
