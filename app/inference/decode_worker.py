"""One decode worker: a process that turns uploads into the nets' input tensors, so that a decode
the server cannot stop in a thread can be stopped by killing the process (decoding.py).

Pillow decodes some encodings in pure Python while holding the GIL (a JPEG of a million empty
comment markers takes seconds in its header parser alone); in a thread of the server such a
decode would hold a worker and slow every other request, and nothing could end it. Here it runs
at a lower CPU priority than the server, in a process whose data segment is limited to the
per-picture budget over what it held before its first job (a decode the header estimate got
wrong fails with MemoryError instead of growing), and the server kills it at the deadline.

A new worker says READY; then a job is two exchanges on one pipe, so that the server, which owns
the budget every decode in progress shares, reserves memory between them:

    server -> worker   Job(data, steps)          (send_job: the bytes as they are, no copy)
    worker -> server   Needs(bytes, factor)      or ImageRejected (header refused)
    server -> worker   GO                        or STOP (the shared budget stayed full)
    worker -> server   Done(Prepared or ImageRejected, whether the worker stays)
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.inference.decode_budget import MIB, DecodeBudget, MemoryBudget, estimate
from app.inference.errors import ImageRejected
from app.inference.images import decoded, open_upload, plan, preprocess, sniff, webp_canvas
from app.repository.manifest import Preprocess

READY = "ready"  # a new worker's first message
GO = "go"
STOP = "stop"
# The worker's CPU priority: below the server's, so the event loop and inference go first.
NICENESS = 10
# Above the per-picture budget: Python's own objects, the upload's bytes (up to 10 MiB) and the
# tensors made. With the per-picture budget (160 MiB), the server's copies of the body and a new
# worker's own pages, one upload stays under 250 MB however wrong its header estimate is.
HEADROOM_BYTES = 32 * MIB
# What reading a header may allocate beyond the upload's bytes (EXIF, ICC profiles, comments):
# Pillow keeps every JPEG comment marker in a list, so a file of two million empty ones would
# otherwise take 160 MiB before its size is known.
HEADER_BYTES = 24 * MIB
# A worker whose resident memory stays this far above its start after a job is replaced: the
# allocator may keep what a large decode freed, and the next decode should start from nothing.
RETIRE_GROWTH_BYTES = 96 * MIB


@dataclass(frozen=True)
class Limits:
    """What every job of a worker is held to (Settings: max_image_pixels, max_image_aspect,
    decode_budget_bytes)."""

    max_pixels: int
    max_aspect: float
    per_image_bytes: int


@dataclass(frozen=True)
class Job:
    data: bytes
    steps: tuple[Preprocess, ...]  # one tensor is made for each, in this order


def send_job(conn: Connection, job: Job) -> None:
    """The steps pickled, then the upload's bytes written from the caller's buffer: pickling
    them would make one more copy of up to the whole body limit."""
    conn.send(job.steps)
    conn.send_bytes(job.data)


def receive_job(conn: Connection) -> Job:
    steps = conn.recv()
    return Job(conn.recv_bytes(), steps)


@dataclass(frozen=True)
class Needs:
    """The header is read: decoding will take about ``nbytes``, reduced by ``factor``."""

    nbytes: int
    factor: int


@dataclass(frozen=True)
class Prepared:
    """The upload as each step's (1, 3, crop, crop) float32 tensor."""

    batches: tuple[NDArray[np.float32], ...]
    size: tuple[int, int]  # the decoded picture's width and height (after any reduction)
    decode_ms: float  # header, decode and conversion to upright 8-bit RGB
    preprocess_ms: tuple[float, ...]
    peak_growth_bytes: int  # the worker's peak resident memory over its start, this job
    retire: bool  # the worker leaves after this answer (see RETIRE_GROWTH_BYTES)


@dataclass(frozen=True)
class Done:
    """A job's answer, and whether the worker takes another (False: it has left)."""

    answer: Prepared | ImageRejected
    stays: bool


def serve(conn: Connection, limits: Limits) -> None:
    """A worker's life: jobs until the server closes the pipe, or a job leaves it too big."""
    os.nice(NICENESS)
    start_rss = _status_bytes("VmRSS")
    _cap_data(limits.per_image_bytes + HEADROOM_BYTES, hard=True)
    budget = DecodeBudget(limits.per_image_bytes, MemoryBudget(0), 0.0)
    try:
        conn.send(READY)
        while _answer(conn, receive_job(conn), limits, budget, start_rss):
            pass
    except (EOFError, OSError):  # the server closed the pipe (or left): nothing to answer
        return


def _answer(
    conn: Connection, job: Job, limits: Limits, budget: DecodeBudget, start_rss: int
) -> bool:
    """Serve one job; False when the worker should leave afterwards."""
    _reset_peak()
    started = time.perf_counter()
    _cap_data(HEADER_BYTES + _opening_bytes(job.data))  # over what it holds now, bytes included
    try:
        image = open_upload(job.data, limits.max_pixels, limits.max_aspect, budget)
        nbytes, factor = plan(image, budget)
    except ImageRejected as refused:
        conn.send(refused)
        return True
    except MemoryError:
        conn.send(Done(_over_header_memory(), stays=False))
        return False
    conn.send(Needs(nbytes, factor))
    if conn.recv() != GO:
        return True
    _cap_data(None)  # back to the per-picture cap
    done = _done(lambda: _prepared(image, factor, job.steps, limits, started, start_rss), limits)
    conn.send(done)
    return done.stays


def _done(prepare: Callable[[], Prepared], limits: Limits) -> Done:
    """The decode's answer, its refusals (a decoder's, or the data cap's) included."""
    try:
        prepared = prepare()
    except MemoryError:
        return Done(_over_memory(limits), stays=False)
    except ImageRejected as refused:
        return Done(refused, stays=True)
    return Done(prepared, stays=not prepared.retire)


def _prepared(
    image: Image.Image,
    factor: int,
    steps: tuple[Preprocess, ...],
    limits: Limits,
    started: float,
    start_rss: int,
) -> Prepared:
    picture = decoded(image, limits.max_pixels, factor)
    decode_ms = (time.perf_counter() - started) * 1000
    batches, timings = [], []
    for step in steps:
        began = time.perf_counter()
        batches.append(preprocess(picture, step, limits.max_pixels))
        timings.append((time.perf_counter() - began) * 1000)
    size = picture.size
    del picture, image
    growth = _status_bytes("VmHWM") - start_rss
    retire = _status_bytes("VmRSS") - start_rss >= RETIRE_GROWTH_BYTES
    return Prepared(tuple(batches), size, decode_ms, tuple(timings), max(0, growth), retire)


def _opening_bytes(data: bytes) -> int:
    """What opening the upload allocates besides its header: libwebp's canvases for a WebP
    (reserved, not yet written; its size is checked against the budget before it is opened)."""
    canvas = webp_canvas(data) if sniff(data) == "WEBP" else None
    return (
        0 if canvas is None else estimate(canvas[0], canvas[1], "RGB", "WEBP", False).decode_bytes
    )


def _over_header_memory() -> ImageRejected:
    return ImageRejected(
        "over_budget",
        f"reading this picture's header took more than {HEADER_BYTES / MIB:,.0f} MiB of memory "
        "(a file of that many segments or comments is not a photograph)",
    )


def _over_memory(limits: Limits) -> ImageRejected:
    return ImageRejected(
        "over_budget",
        "decoding this picture took more memory than its header announced, over the "
        f"per-picture budget of {limits.per_image_bytes / MIB:,.0f} MiB; send a smaller picture "
        "(or a JPEG)",
    )


def _cap_data(allowance: int | None, hard: bool = False) -> None:
    """Cap the data segment (heap and anonymous mappings: where pixels go) at what the worker
    holds now plus ``allowance``; an allocation past it raises MemoryError. ``hard`` sets the
    ceiling no later cap exceeds (at the worker's start: the per-picture budget and headroom);
    ``None`` lifts the cap back to that ceiling."""
    held = _status_bytes("VmData")
    if not held:
        return
    ceiling = resource.getrlimit(resource.RLIMIT_DATA)[1]
    if hard:
        ceiling = held + (allowance or 0)
        resource.setrlimit(resource.RLIMIT_DATA, (ceiling, ceiling))
        return
    cap = ceiling if allowance is None else min(ceiling, held + allowance)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, ceiling))


def _status_bytes(name: str) -> int:
    """A /proc/self/status figure (VmRSS, VmHWM, VmData) in bytes; 0 without /proc (then
    neither the data cap nor retiring applies)."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    """VmHWM from here: Linux's clear_refs mode 5 sets the peak to the current RSS."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
