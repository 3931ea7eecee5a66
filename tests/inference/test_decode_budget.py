"""The decode budget (issue 14): each hostile file is refused before decoding or decoded within
the per-picture budget; the shared budget makes a decode wait, then refuses it with 503."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from app.inference.decode_budget import DecodeBudget, MemoryBudget, estimate
from app.inference.errors import ImageRejected, Overloaded
from app.inference.images import _high_byte, decode, webp_canvas
from scripts.hostile_images import (
    animated_webp,
    chunk_flood_png,
    greyscale16_png,
    lossless_webp,
    many_scan_jpeg,
    rgba_png,
    rle_bmp,
)

MIB = 1024 * 1024
MAX_PIXELS = 50_000_000


def budget(per_image_mib: int = 160, total_mib: int = 1024, wait_s: float = 1.0) -> DecodeBudget:
    return DecodeBudget(per_image_mib * MIB, MemoryBudget(total_mib * MIB), wait_s)


def refusal(data: bytes, within: DecodeBudget | None = None) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        decode(data, MAX_PIXELS, 20.0, within or budget())
    return caught.value


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (rle_bmp, "this BMP is RLE8-compressed"),
        (lambda: many_scan_jpeg(200), "this JPEG has 209 scans, more than the 64"),
        (lambda: chunk_flood_png(30_000), "this PNG has more than 5,000 chunks"),
    ],
    ids=["RLE BMP", "many-scan JPEG", "chunk-flood PNG"],
)
def test_slow_encodings_are_refused_before_decoding(build: object, says: str) -> None:
    assert callable(build)
    error = refusal(build())
    assert (error.http_status, error.code) == (422, "slow_encoding")
    assert says in error.message


def test_an_ordinary_progressive_jpeg_and_png_pass_the_encoding_checks() -> None:
    assert decode(many_scan_jpeg(1), MAX_PIXELS, 20.0, budget()).size == (640, 480)
    assert decode(chunk_flood_png(100), MAX_PIXELS, 20.0, budget()).size == (16, 16)


@pytest.mark.parametrize(
    ("build", "names"),
    [
        (lossless_webp, "a 7000x7000 WEBP in mode RGBA would take about 564 MiB"),
        (animated_webp, "a 5000x5000 WEBP in mode RGB would take about 286 MiB"),
        (greyscale16_png, "a 7000x7000 PNG in mode I;16 would take about 284 MiB"),
    ],
    ids=["7000x7000 lossless WebP", "animated WebP", "16-bit PNG"],
)
def test_pictures_over_the_budget_are_refused_naming_the_numbers(build: object, names: str) -> None:
    assert callable(build)
    error = refusal(build())
    assert (error.http_status, error.code) == (413, "over_budget")
    assert names in error.message
    assert "over the per-picture budget of 160 MiB" in error.message


@pytest.mark.parametrize("build", [lambda: greyscale16_png(5000), lambda: rgba_png(4000)])
def test_pictures_over_it_at_full_size_are_reduced_before_their_conversion(build: object) -> None:
    assert callable(build)
    data = build()
    with Image.open(io.BytesIO(data)) as header:
        found = estimate(header.width, header.height, header.mode, "PNG", False)
    assert found.full_bytes > 160 * MIB >= found.reduced_bytes
    image = decode(data, MAX_PIXELS, 20.0, budget())
    assert image.mode == "RGB"
    assert min(image.size) >= 512
    assert max(image.size) < 1000


def test_within_the_budget_nothing_is_reduced() -> None:
    for data in (greyscale16_png(1600), rgba_png(2000)):  # each could be reduced 3 times
        image = decode(data, MAX_PIXELS, 20.0, budget())
        assert image.size == Image.open(io.BytesIO(data)).size


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_the_high_byte_is_taken_without_a_wider_copy(mode: str) -> None:
    values = np.array([[0, 255, 256, 0x1234], [0xFFFF, 0x8000, 1, 0x00FF]], dtype=np.uint16)
    image = (
        Image.fromarray(values.astype(np.int32)).convert(mode)
        if mode == "I"
        else (
            Image.frombytes(
                mode, (4, 2), values.astype(">u2" if mode == "I;16B" else "<u2").tobytes()
            )
        )
    )
    assert _high_byte(np.asarray(image)).tolist() == (values >> 8).tolist()


def test_decodes_wait_for_the_shared_budget_then_get_503() -> None:
    shared = MemoryBudget(100)
    order: list[str] = []
    with shared.reserve(80, wait_s=1):
        with pytest.raises(Overloaded) as caught, shared.reserve(30, wait_s=0.05):
            pass
        assert caught.value.retry_after_s >= 1

        def later() -> None:
            with shared.reserve(30, wait_s=5):
                order.append("second")

        waiter = threading.Thread(target=later)
        waiter.start()
        time.sleep(0.05)
        order.append("first done")
    waiter.join()
    assert order == ["first done", "second"]
    assert (shared.used, shared.peak) == (0, 80)


def test_one_decode_larger_than_the_shared_budget_runs_alone() -> None:
    shared = MemoryBudget(100)
    with shared.reserve(150, wait_s=0.01):
        assert shared.used == 150


@pytest.mark.parametrize(
    ("mode", "params", "chunk"),
    [
        ("RGB", {}, b"VP8 "),
        ("RGB", {"lossless": True}, b"VP8L"),
        ("RGBA", {}, b"VP8X"),
        ("RGBA", {"lossless": True}, b"VP8L"),
    ],
)
def test_a_webps_canvas_is_read_from_its_first_chunk_as_pillow_reads_it(
    mode: str, params: dict[str, object], chunk: bytes
) -> None:
    buffer = io.BytesIO()
    Image.new(mode, (123, 45), (1, 2, 3, 100)[: len(mode)]).save(buffer, "WEBP", **params)
    data = buffer.getvalue()
    assert data[12:16] == chunk
    with Image.open(io.BytesIO(data)) as opened:
        assert webp_canvas(data) == (*opened.size, opened.mode == "RGBA")


def test_an_animated_webps_canvas_and_a_truncated_one() -> None:
    data = animated_webp(300, 2)
    assert webp_canvas(data) == (300, 300, False)
    assert webp_canvas(data[:29]) is None
