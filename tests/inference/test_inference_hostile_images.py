"""Hostile uploads: each is refused with the right code or decoded correctly, never a crash, and
decoding them all stays within a small memory bound (measured in a child process, which also
runs without pytest's warnings-as-errors, as the server does)."""

import contextlib
import functools
import io
import json
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.inference.errors import ImageRejected
from app.inference.images import decode, preprocess
from tests.conftest import IMAGENET_STEPS

REPO = Path(__file__).resolve().parents[2]
MAX_PIXELS = 50_000_000
STEPS = IMAGENET_STEPS
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)
# Decoding every upload below in one process may grow its peak memory by at most this much. A
# decoded 20000 x 20000 bomb would take 1.2 GB as RGB, the 48 Mpx JPEG about 190 MB undrafted.
MEMORY_BOUND_MB = 100


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def chunk(kind: bytes, body: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + body))
    return struct.pack(">I", len(body)) + kind + body + crc


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size and holds almost nothing."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def one_bit_png_bomb(side: int = 20_000) -> bytes:
    """A real 1-bit black PNG of side x side pixels: about 48 KB for 400 Mpx."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)  # filter byte 0, then the packed bits
    rows_per_block = 1000
    data = b"".join(compressor.compress(row * rows_per_block) for _ in range(side // 1000))
    data += compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) is rewritten to claim another size."""
    data = bytearray(encode(Image.new("RGB", (16, 16), RED), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def photo_jpeg() -> bytes:
    y, x = np.mgrid[0:240, 0:320]
    pixels = np.stack([x * 255 // 319, y * 255 // 239, np.full_like(x, 128)], axis=-1)
    return encode(Image.fromarray(pixels.astype(np.uint8)), "JPEG", quality=90)


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def sixteen_bit_grey() -> bytes:
    values = np.full((8, 8), 0x8081, dtype=np.uint16)  # high byte 0x80: mid grey, not white
    return encode(Image.fromarray(values), "PNG")


def hidden_red_behind_alpha_0() -> bytes:
    return encode(Image.new("RGBA", (8, 8), (*RED, 0)), "PNG")


def palette_with_transparency() -> bytes:
    image = Image.new("P", (2, 1), 0)
    image.putpalette([*RED, *BLUE])
    image.putpixel((1, 0), 1)
    return encode(image, "PNG", transparency=0)  # index 0 (red) is transparent


def gif_of_2000_frames() -> bytes:
    frames = [Image.new("P", (16, 16), i % 2) for i in range(2000)]
    for frame in frames:
        frame.putpalette([*RED, *BLUE])
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10)


def left_red_right_blue_jpeg(exif: bytes) -> bytes:
    stored = Image.new("RGB", (40, 20), RED)
    stored.paste(BLUE, (20, 0, 40, 20))
    return encode(stored, "JPEG", quality=95, exif=exif)


def orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def random_bytes() -> bytes:
    return b"\x00" + np.random.default_rng(0).bytes(4095)  # no accepted signature starts with 0


@dataclass(frozen=True)
class Hostile:
    make: Callable[[], bytes]
    code: str | None = None  # the refusal expected; None: decoded, to `size`, with `probe`
    size: tuple[int, int] | None = None
    probe: tuple[tuple[int, int], tuple[int, int, int]] | None = None  # a pixel and its colour
    warns: bool = False  # Pillow warns and goes on (as the server does, warnings not errors)


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF"
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"
HEIC_LIKE = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
HTML = b"<!DOCTYPE html><html><body><img src=x></body></html>"
DAMAGED_EXIF = b"Exif\x00\x00II*\x00\xff\xff\xff\xff"
GREY = (128, 128, 128)


def refused(make: Callable[[], bytes], code: str) -> "Hostile":
    return Hostile(make, code=code)


def decoded(
    make: Callable[[], bytes],
    size: tuple[int, int],
    where: tuple[int, int],
    colour: tuple[int, int, int],
    warns: bool = False,
) -> "Hostile":
    return Hostile(make, size=size, probe=(where, colour), warns=warns)


def solid(mode: str, size: tuple[int, int], colour: object, fmt: str, **params: object) -> bytes:
    return encode(Image.new(mode, size, colour), fmt, **params)  # type: ignore[arg-type]


HOSTILE: dict[str, Hostile] = {
    "20000x20000 1-bit PNG of 48 KB": refused(one_bit_png_bomb, "too_large"),
    "PNG header claiming 100000x100000": refused(
        lambda: png_header_only(100_000, 100_000), "too_large"
    ),
    "PNG header in Pillow's warning band": refused(
        lambda: png_header_only(10_000, 10_000), "too_large"
    ),
    "JPEG header claiming 60 Mpx": refused(lambda: jpeg_claiming(10_000, 6_000), "too_large"),
    "1x100000 PNG": refused(lambda: solid("L", (1, 100_000), 0, "PNG"), "too_elongated"),
    "truncated JPEG": refused(lambda: truncated(photo_jpeg()), "undecodable"),
    "truncated PNG": refused(lambda: truncated(solid("RGB", (64, 64), RED, "PNG")), "undecodable"),
    "GIF signature, damaged header": refused(lambda: b"GIF89a\x01", "undecodable"),
    "16-bit grey PNG": decoded(sixteen_bit_grey, (8, 8), (3, 3), GREY),
    "RGBA, alpha 0 over hidden red": decoded(hidden_red_behind_alpha_0, (8, 8), (4, 4), WHITE),
    "palette with transparency": decoded(palette_with_transparency, (2, 1), (0, 0), WHITE),
    "GIF of 2000 frames": decoded(gif_of_2000_frames, (16, 16), (8, 8), RED),
    "EXIF orientation 6": decoded(
        lambda: left_red_right_blue_jpeg(orientation(6)), (20, 40), (10, 5), RED
    ),
    "EXIF orientation 99": decoded(
        lambda: left_red_right_blue_jpeg(orientation(99)), (40, 20), (5, 10), RED
    ),
    "damaged EXIF": decoded(
        lambda: left_red_right_blue_jpeg(DAMAGED_EXIF), (40, 20), (5, 10), RED, warns=True
    ),
    "1x1 PNG": decoded(
        lambda: solid("RGB", (1, 1), (10, 20, 30), "PNG"), (1, 1), (0, 0), (10, 20, 30)
    ),
    "48 Mpx JPEG (drafted to 1/8)": decoded(
        lambda: solid("L", (8000, 6000), 128, "JPEG"), (1000, 750), (500, 375), GREY
    ),
    "lossless WebP": decoded(
        lambda: solid("RGB", (4, 4), BLUE, "WEBP", lossless=True), (4, 4), (1, 1), BLUE
    ),
    "BMP": decoded(lambda: solid("RGB", (4, 4), BLUE, "BMP"), (4, 4), (1, 1), BLUE),
    "SVG": refused(lambda: SVG, "unsupported_format"),
    "PDF": refused(lambda: PDF, "unsupported_format"),
    "EPS (would start Ghostscript)": refused(lambda: EPS, "unsupported_format"),
    "TIFF": refused(lambda: solid("RGB", (8, 8), RED, "TIFF"), "unsupported_format"),
    "HEIC-like": refused(lambda: HEIC_LIKE, "unsupported_format"),
    "HTML": refused(lambda: HTML, "unsupported_format"),
    "random bytes": refused(random_bytes, "unsupported_format"),
    "0 bytes": refused(lambda: b"", "empty"),
}


@functools.cache
def upload(name: str) -> bytes:
    return HOSTILE[name].make()


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_upload_is_refused_or_decoded_correctly(name: str) -> None:
    case = HOSTILE[name]
    if case.code is not None:
        with pytest.raises(ImageRejected) as caught:
            decode(upload(name), MAX_PIXELS)
        assert caught.value.code == case.code
        assert caught.value.http_status == ImageRejected.STATUS[case.code]
        return
    warned = pytest.warns(UserWarning, match="EXIF") if case.warns else contextlib.nullcontext()
    with warned:
        image = decode(upload(name), MAX_PIXELS)
    assert (image.mode, image.size) == ("RGB", case.size)
    assert case.probe is not None
    where, colour = case.probe
    assert np.abs(np.subtract(image.getpixel(where), colour)).max() <= 2  # JPEG rounding
    tensor = preprocess(image, STEPS, MAX_PIXELS)
    assert tensor.shape == (1, 3, 224, 224)
    assert np.isfinite(tensor).all()


def test_the_refusal_codes_map_to_their_http_statuses() -> None:
    assert ImageRejected.STATUS == {
        "empty": 422,
        "undecodable": 422,
        "too_elongated": 422,
        "unsupported_format": 415,
        "unsupported_mode": 415,
        "too_large": 413,
        "over_budget": 413,
        "slow_encoding": 422,
        "decode_timeout": 422,
    }


def test_the_size_is_refused_from_the_header_before_any_pixel_is_decoded() -> None:
    # The file holds no pixel data at all: only a header check can give "too_large".
    with pytest.raises(ImageRejected) as caught:
        decode(png_header_only(8_000, 8_000), MAX_PIXELS)
    assert caught.value.code == "too_large"
    with pytest.raises(ImageRejected) as within_limit:
        decode(png_header_only(8_000, 8_000), 8_000 * 8_000)
    assert within_limit.value.code == "undecodable"  # it got as far as decoding


CHILD = """
import json, resource, sys
from pathlib import Path
from app.inference.errors import ImageRejected
from app.inference.images import decode

def outcome(data, max_pixels):
    try:
        return list(decode(data, max_pixels).size)
    except ImageRejected as error:
        return error.code

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

folder, max_pixels, band = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
before = peak_mb()
outcomes = {path.name: outcome(path.read_bytes(), max_pixels) for path in sorted(folder.iterdir())}
# Above Pillow's own limit our check lets 100 Mpx through; Pillow's warning must stop it.
outcomes["warning band, raised limit"] = outcome(band.read_bytes(), 200_000_000)
print(json.dumps({"outcomes": outcomes, "growth_mb": peak_mb() - before}))
"""


def test_decoding_every_hostile_upload_stays_within_a_memory_bound(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    folder.mkdir()
    names = {f"{index:02d}": name for index, name in enumerate(HOSTILE)}
    for file_name, name in names.items():
        (folder / file_name).write_bytes(upload(name))
    band = tmp_path / "band.png"
    band.write_bytes(png_header_only(10_000, 10_000))
    command = [sys.executable, "-c", CHILD, str(folder), str(MAX_PIXELS), str(band)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    expected = {
        file_name: HOSTILE[name].code or list(HOSTILE[name].size or ())
        for file_name, name in names.items()
    }
    expected["warning band, raised limit"] = "too_large"
    assert report["outcomes"] == expected
    assert report["growth_mb"] < MEMORY_BOUND_MB
