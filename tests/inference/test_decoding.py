"""Decoding in worker processes killed at a deadline (issue 14): a picture whose decoder is slow
in a way no rule refuses up front is stopped at Settings.decode_deadline_s with 422, the worker
is replaced, and what a worker makes is exactly what decoding in the server made."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.inference import decode_worker
from app.inference.decode_budget import MIB
from app.inference.decode_worker import (
    GO,
    HEADER_BYTES,
    READY,
    Done,
    Job,
    Limits,
    Needs,
    Prepared,
    send_job,
)
from app.inference.decoding import WORKER_BYTES, DecodePool, _cpu_seconds
from app.inference.errors import ImageRejected, Overloaded
from app.inference.images import decode, preprocess
from app.settings import Settings
from scripts.hostile_images import (
    comment_flood_gif,
    fill_byte_jpeg,
    greyscale16_png,
    marker_flood_jpeg,
)
from tests.conftest import IMAGENET_STEPS, encode, exif_rotated_jpeg, photo_like, rgba_png

IMAGENET = IMAGENET_STEPS
LECTURE = IMAGENET.model_copy(update={"crop": 227})
MakePool = Callable[..., DecodePool]


@pytest.fixture
def make_pool() -> Iterator[MakePool]:
    made: list[DecodePool] = []

    def make(**overrides: object) -> DecodePool:
        settings = Settings(build_on_start=False).model_copy(update=overrides)
        made.append(DecodePool(settings))
        return made[-1]

    yield make
    for pool in made:
        pool.close()


@pytest.mark.parametrize(
    "build",
    [
        lambda: encode(photo_like(640, 480), "JPEG", quality=90),
        exif_rotated_jpeg,
        rgba_png,
        lambda: encode(photo_like(3000, 2000), "WEBP", quality=80),
    ],
    ids=["photo", "EXIF-rotated photo", "RGBA PNG", "6 Mpx WebP (libwebp's canvases at opening)"],
)
def test_a_worker_makes_exactly_the_tensors_the_server_made(
    make_pool: MakePool, build: Callable[[], bytes]
) -> None:
    pool = make_pool()
    photo = build()
    prepared = pool.prepare(photo, [IMAGENET, LECTURE])
    picture = decode(photo, 50_000_000)
    for made, step in zip(prepared.batches, [IMAGENET, LECTURE], strict=True):
        assert np.array_equal(made, preprocess(picture, step, 50_000_000))
    assert [batch.shape for batch in prepared.batches] == [(1, 3, 224, 224), (1, 3, 227, 227)]
    assert prepared.size == picture.size


@pytest.mark.parametrize(
    "build",
    [lambda: fill_byte_jpeg(2_000_000), lambda: comment_flood_gif(3_000_000)],
    ids=["JPEG of two million fill bytes", "GIF of three million comment blocks"],
)
def test_a_decode_past_the_deadline_is_stopped_and_the_worker_replaced(
    make_pool: MakePool, build: Callable[[], bytes]
) -> None:
    data = build()
    pool = make_pool(decode_deadline_s=0.2)
    with pytest.raises(ImageRejected) as caught:
        pool.prepare(data, [IMAGENET])
    assert (caught.value.http_status, caught.value.code) == (422, "decode_timeout")
    assert caught.value.message == (
        "decoding this picture used more than the 0.2 s of CPU time a picture may take and was "
        "stopped; send it as an ordinary JPEG or PNG"
    )
    assert pool.killed == 1
    assert pool.alive == 0  # the killed worker is gone, not kept
    photo = encode(photo_like(), "PNG")
    assert pool.prepare(photo, [IMAGENET]).batches[0].shape == (1, 3, 224, 224)
    assert pool.alive == 1


def test_a_worker_that_gets_no_cpu_is_stopped_after_three_times_the_deadline(
    make_pool: MakePool,
) -> None:
    """A stopped process uses no CPU time: only the wall-time bound can end its decode."""
    pool = make_pool(decode_deadline_s=0.5)
    started: list[int] = []
    start = pool._start

    def start_and_note() -> Any:
        worker = start()
        started.append(worker.process.pid)
        return worker

    pool._start = start_and_note  # type: ignore[method-assign]
    outcome: list[BaseException] = []
    upload = threading.Thread(target=_refusal, args=(pool, fill_byte_jpeg(3_000_000), outcome))
    upload.start()
    for _ in range(2000):  # until the worker is in the job, reading the header's markers
        if started and _cpu_seconds(started[0]) >= 0.1:
            break
        time.sleep(0.005)
    os.kill(started[0], signal.SIGSTOP)
    upload.join()
    (error,) = outcome
    assert isinstance(error, ImageRejected)
    assert error.code == "decode_timeout"
    assert (
        "decoding this picture took longer than 1.5 s (the server is busy) and was stopped"
        in error.message
    )
    assert pool.killed == 1


def _refusal(pool: DecodePool, data: bytes, outcome: list[BaseException]) -> None:
    try:
        pool.prepare(data, [IMAGENET])
    except ImageRejected as error:
        outcome.append(error)


def test_the_slow_file_is_a_valid_picture_that_decodes_given_time(make_pool: MakePool) -> None:
    pool = make_pool(decode_deadline_s=120)
    prepared = pool.prepare(fill_byte_jpeg(200_000), [IMAGENET])
    assert prepared.size == (64, 64)
    assert pool.killed == 0


def test_a_decode_stopped_after_reserving_memory_gives_it_back(make_pool: MakePool) -> None:
    """A 16-bit 5000x5000 PNG: its header is read at once, its decode takes far more than
    0.05 s of CPU, so it is stopped while it holds its share of the shared budget."""
    pool = make_pool(decode_deadline_s=0.05)
    with pytest.raises(ImageRejected) as caught:
        pool.prepare(greyscale16_png(5000), [IMAGENET])
    assert caught.value.code == "decode_timeout"
    memory = pool._budget.memory
    assert memory.peak > 100 * MIB  # it was reserved ...
    assert memory.used == 0  # ... and given back


def test_with_every_worker_busy_an_upload_waits_then_gets_503(make_pool: MakePool) -> None:
    pool = make_pool(decode_workers=1, decode_deadline_s=30, decode_wait_s=0.2)
    slow = threading.Thread(target=pool.prepare, args=(fill_byte_jpeg(3_000_000), [IMAGENET]))
    slow.start()
    while pool.alive == 0:  # the slow upload has taken the one worker
        time.sleep(0.01)
    try:
        with pytest.raises(Overloaded) as caught:
            pool.prepare(encode(photo_like(), "PNG"), [IMAGENET])
        assert caught.value.retry_after_s == 1
        assert "all 1 decode workers are busy" in str(caught.value)
    finally:
        slow.join()


def test_refusals_from_the_header_come_back_unchanged(make_pool: MakePool) -> None:
    pool = make_pool(max_image_pixels=10_000)
    with pytest.raises(ImageRejected) as caught:
        pool.prepare(encode(photo_like(320, 240), "PNG"), [IMAGENET])
    assert (caught.value.code, caught.value.message) == (
        "too_large",
        "320x240 is more than 10000 pixels",
    )
    with pytest.raises(ImageRejected) as empty:
        pool.prepare(b"", [IMAGENET])
    assert empty.value.code == "empty"
    assert pool.alive == 1  # the same worker answered both


def test_a_decode_using_more_than_its_header_announced_fails_within_the_cap() -> None:
    """The worker's data segment is capped at the per-picture budget over its start: with the
    budget set to exactly the estimate and no headroom, the real decode (zlib's buffers, the
    resize) goes past it and gets 413 instead of growing."""
    data = encode(Image.new("RGB", (1500, 1500), (10, 200, 30)), "PNG")
    limits = Limits(max_pixels=50_000_000, max_aspect=20.0, per_image_bytes=1500 * 1500 * 4)
    context = multiprocessing.get_context("forkserver")
    ours, theirs = context.Pipe()
    worker = context.Process(target=_serve_without_headroom, args=(theirs, limits), daemon=True)
    worker.start()
    theirs.close()
    try:
        assert ours.recv() == READY
        send_job(ours, Job(data, (IMAGENET,)))
        needs = ours.recv()
        assert isinstance(needs, Needs)
        assert needs.nbytes <= limits.per_image_bytes
        ours.send(GO)
        done = ours.recv()
    finally:
        ours.close()
        worker.join(timeout=10)
    assert isinstance(done, Done)
    assert not done.stays
    assert isinstance(done.answer, ImageRejected)
    assert (done.answer.http_status, done.answer.code) == (413, "over_budget")
    assert "took more memory than its header announced" in done.answer.message
    assert f"{limits.per_image_bytes / MIB:,.0f} MiB" in done.answer.message


def _serve_without_headroom(conn: object, limits: Limits) -> None:
    decode_worker.HEADROOM_BYTES = 0
    decode_worker.serve(conn, limits)  # type: ignore[arg-type]


def test_the_same_decode_with_its_headroom_succeeds(make_pool: MakePool) -> None:
    data = encode(Image.new("RGB", (1500, 1500), (10, 200, 30)), "PNG")
    pool = make_pool(decode_budget_bytes=1500 * 1500 * 4)
    prepared = pool.prepare(data, [IMAGENET])
    assert prepared.size == (1500, 1500)
    assert 0 < prepared.peak_growth_bytes < 1500 * 1500 * 4 + decode_worker.HEADROOM_BYTES


def test_a_worker_runs_below_the_servers_cpu_priority(make_pool: MakePool) -> None:
    pool = make_pool()
    pool.prepare(encode(photo_like(), "PNG"), [IMAGENET])
    (worker,) = pool._idle
    with open(f"/proc/{worker.process.pid}/stat") as stat:
        nice = int(stat.read().rsplit(")", 1)[1].split()[16])
    assert nice == decode_worker.NICENESS + _own_nice()


def _own_nice() -> int:
    with open("/proc/self/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[16])


def test_a_worker_holds_less_of_its_own_than_the_budget_reserves_for_it(
    make_pool: MakePool,
) -> None:
    """WORKER_BYTES, reserved with every decode, covers what a worker forked from the forkserver
    writes of its own (the inherited pages CPython's reference counting copies) after a job."""
    pool = make_pool()
    pool.prepare(encode(photo_like(640, 480), "JPEG"), [IMAGENET])
    (worker,) = pool._idle
    rollup = Path(f"/proc/{worker.process.pid}/smaps_rollup").read_text().splitlines()
    private = sum(int(line.split()[1]) * 1024 for line in rollup if line.startswith("Private_"))
    assert 0 < private < WORKER_BYTES


def test_a_header_that_takes_more_than_its_allowance_is_refused(make_pool: MakePool) -> None:
    """Two million empty comment markers make Pillow keep a list of two million entries before
    the picture's size is known: stopped by the header's cap, not by the deadline."""
    pool = make_pool(decode_deadline_s=120)
    with pytest.raises(ImageRejected) as caught:
        pool.prepare(marker_flood_jpeg(2_000_000), [IMAGENET])
    assert (caught.value.http_status, caught.value.code) == (413, "over_budget")
    assert caught.value.message.startswith(
        f"reading this picture's header took more than {HEADER_BYTES // MIB} MiB of memory"
    )
    assert pool._budget.memory.used == 0
    assert pool.alive == 0  # the worker left: its heap is not reused


def test_each_decode_reserves_its_workers_own_memory_from_the_shared_budget(
    make_pool: MakePool,
) -> None:
    pool = make_pool(decode_memory_bytes=WORKER_BYTES + HEADER_BYTES + MIB, decode_wait_s=0.1)
    holding = threading.Thread(target=_refusal, args=(pool, fill_byte_jpeg(3_000_000), []))
    holding.start()
    while pool.alive == 0:
        time.sleep(0.005)
    with pytest.raises(Overloaded) as caught:
        pool.prepare(encode(photo_like(), "PNG"), [IMAGENET])
    holding.join()
    assert str(caught.value) == (
        "decoding needs 56 MiB and other pictures being decoded hold 56 of 57 MiB"
    )


SEEDS = {
    kind: encode(photo_like(96, 64), kind, **params)
    for kind, params in [
        ("JPEG", {"quality": 80}),
        ("PNG", {}),
        ("GIF", {}),
        ("BMP", {}),
        ("WEBP", {"quality": 80}),
    ]
}


@st.composite
def damaged_pictures(draw: st.DrawFn) -> bytes:
    """A small valid picture of each accepted format, then bytes overwritten, inserted or cut."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data) - 1))
        match draw(st.sampled_from(["overwrite", "insert", "cut"])):
            case "overwrite":
                data[at] = draw(st.integers(0, 255))
            case "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=64))
            case "cut":
                del data[at:]
                if not data:
                    break
    return bytes(data)


@pytest.fixture(scope="module")
def fuzz_pool() -> Iterator[DecodePool]:
    pool = DecodePool(Settings(build_on_start=False, decode_deadline_s=2))
    yield pool
    pool.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=damaged_pictures())
def test_a_damaged_picture_gets_tensors_or_a_4xx_never_anything_else(
    fuzz_pool: DecodePool, data: bytes
) -> None:
    outcome = _prepared_or_refused(fuzz_pool, data)
    if isinstance(outcome, ImageRejected):
        assert 400 <= outcome.http_status < 500
        assert outcome.message
    else:
        (batch,) = outcome.batches
        assert batch.shape == (1, 3, 224, 224)
        assert np.isfinite(batch).all()
    assert fuzz_pool._budget.memory.used == 0
    assert (fuzz_pool.crashed, fuzz_pool.killed) == (0, 0)  # refused by the decoder, not died


def _prepared_or_refused(pool: DecodePool, data: bytes) -> Prepared | ImageRejected:
    try:
        return pool.prepare(data, [IMAGENET])
    except ImageRejected as refused:
        return refused


def test_a_warmed_pool_has_its_worker_ready_for_the_first_upload(make_pool: MakePool) -> None:
    pool = make_pool()
    pool.warm()
    (worker,) = pool._idle
    pool.prepare(encode(photo_like(), "PNG"), [IMAGENET])
    assert pool._idle == [worker]  # the warmed worker took the upload, and no other started
