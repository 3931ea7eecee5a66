"""Small uploads that used to cost gigabytes or seconds to decode (issue 14), built on demand by
the tests (tests/inference/test_decode_budget.py, tests/web/test_decode_budget_server.py) and by
`make reliability`. Each is a valid file of an accepted format."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def _saved(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def lossless_webp(side: int = 7000) -> bytes:
    """A few dozen bytes that decode to side x side RGBA."""
    return _saved(
        Image.new("RGBA", (side, side), (10, 20, 30, 128)), "WEBP", lossless=True, method=0
    )


def animated_webp(side: int = 5000, frames: int = 3) -> bytes:
    """A few hundred bytes: an animation of ``frames`` side x side frames."""
    images = [Image.new("RGBA", (side, side), (40 * i, 0, 0, 255)) for i in range(frames)]
    return _saved(
        images[0], "WEBP", save_all=True, append_images=images[1:], lossless=True, method=0
    )


def greyscale16_png(side: int = 7000) -> bytes:
    """16-bit greyscale (Pillow's mode I;16), compressed to about 100 KB at 7000 x 7000."""
    return _saved(Image.new("I;16", (side, side), 0x1234), "PNG")


def rgba_png(side: int = 3000) -> bytes:
    return _saved(Image.new("RGBA", (side, side), (200, 100, 50, 128)), "PNG")


def rle_bmp(width: int = 2000, height: int = 2000) -> bytes:
    """An 8-bit BMP compressed with RLE8: runs of 250 pixels, a row at a time."""
    runs = b"".join(bytes([min(250, width - x), x // 250 % 256]) for x in range(0, width, 250))
    pixels = (runs + b"\x00\x00") * height + b"\x00\x01"
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    return head + info + palette + pixels


def many_scan_jpeg(scans: int = 1000) -> bytes:
    """A progressive JPEG whose last scan is repeated ``scans`` times."""
    image = Image.new("RGB", (640, 480), (90, 140, 200))
    data = _saved(image, "JPEG", progressive=True, quality=90)
    last = data.rindex(b"\xff\xda")
    end = data.rindex(b"\xff\xd9")
    return data[:last] + data[last:end] * scans + data[end:]


def chunk_flood_png(chunks: int = 200_000) -> bytes:
    """A 16 x 16 PNG with ``chunks`` empty private chunks before its end."""
    data = _saved(Image.new("RGB", (16, 16), (1, 2, 3)), "PNG")
    kind = b"zzZz"  # ancillary, private, safe to copy
    empty = struct.pack(">I", 0) + kind + struct.pack(">I", zlib.crc32(kind))
    end = data.rindex(b"IEND") - 4
    return data[:end] + empty * chunks + data[end:]


def marker_flood_jpeg(markers: int = 2_000_000) -> bytes:
    """A 64 x 64 JPEG with ``markers`` empty comment segments (FF FE 00 02) before its frame:
    Pillow's header parser reads each in Python and keeps each in a list. Not refused by any
    rule up front (a JPEG may carry comments); 2,000,000 (8 MB) take seconds and 160 MiB, so
    the header's memory cap stops it."""
    data = _saved(Image.new("RGB", (64, 64), (200, 30, 30)), "JPEG")
    return data[:2] + b"\xff\xfe\x00\x02" * markers + data[2:]


def fill_byte_jpeg(fill: int = 10_000_000) -> bytes:
    """A 64 x 64 JPEG with ``fill`` 0xFF fill bytes before its frame (the standard allows any
    number before a marker): Pillow reads them one byte at a time in Python, allocating nothing;
    10,000,000 (10 MB) take about 7 s of CPU on a 2-core box, so only the deadline stops it."""
    data = _saved(Image.new("RGB", (64, 64), (30, 200, 30)), "JPEG")
    return data[:2] + b"\xff" * fill + data[2:]


def comment_flood_gif(blocks: int = 3_000_000) -> bytes:
    """A 64 x 64 GIF with ``blocks`` empty comment extensions (21 FE 00) before its image, each
    read by Pillow in Python; 3,000,000 (9 MB) take about a second."""
    data = _saved(Image.new("P", (64, 64), 3), "GIF")
    image = data.index(b"\x2c", 13)  # the image descriptor, after the header and colour table
    return data[:image] + b"\x21\xfe\x00" * blocks + data[image:]


# Each hostile file, by name, as the tests and `make reliability` build it.
HOSTILE = {
    "animated WebP, 3 frames of 5000x5000": animated_webp,
    "lossless WebP, 7000x7000": lossless_webp,
    "16-bit greyscale PNG, 7000x7000": greyscale16_png,
    "16-bit greyscale PNG, 5000x5000": lambda: greyscale16_png(5000),
    "RGBA PNG, 4000x4000": lambda: rgba_png(4000),
    "RLE8 BMP, 2000x2000": rle_bmp,
    "progressive JPEG, 1,000 scans": many_scan_jpeg,
    "PNG of 200,000 empty chunks": chunk_flood_png,
    "JPEG of 2,000,000 comment markers": marker_flood_jpeg,
    "JPEG of 10,000,000 fill bytes": fill_byte_jpeg,
    "GIF of 3,000,000 comment blocks": comment_flood_gif,
}
