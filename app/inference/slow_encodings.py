"""Encodings whose decoding takes far longer than their size suggests, refused before decoding.

Pillow decodes these in pure Python or loops over them without bound, holding the GIL, so one
small upload could hold a worker (and slow every other request) for seconds, and no deadline
can stop a decode in a thread. Each is refused up front with a 4xx naming what was found:

- a BMP compressed with RLE (BI_RLE8, BI_RLE4): Pillow's RLE decoder is Python, byte by byte
  (a 29 KB file held a worker 19 s);
- a JPEG with more scans than any encoder writes (a progressive JPEG has about 10; repeating
  one 1,000 times made a 55 KB file take 4.7 s);
- a PNG of more chunks than any encoder writes (700,000 empty chunks took 4.6 s; Pillow reads
  each in Python). libpng writes 8 KiB IDAT chunks, so the largest upload (10 MiB) holds about
  1,300; the walk that counts them stops at the limit, a few milliseconds.
"""

from __future__ import annotations

import struct

from app.inference.errors import ImageRejected

BMP_RLE = {1: "RLE8", 2: "RLE4"}
MAX_JPEG_SCANS = 64
MAX_PNG_CHUNKS = 5_000
CHUNK_HEAD = 12  # length, type, CRC: the least bytes a chunk takes
PNG_SIGNATURE_BYTES = 8


def _refuse(message: str) -> ImageRejected:
    return ImageRejected("slow_encoding", message)


def _bmp(data: bytes) -> None:
    if len(data) < 34:
        return
    header_size, compression = (
        struct.unpack_from("<I", data, 14)[0],
        struct.unpack_from("<I", data, 30)[0],
    )
    if header_size >= 40 and compression in BMP_RLE:
        raise _refuse(
            f"this BMP is {BMP_RLE[compression]}-compressed, which decodes too slowly to be "
            "accepted; send it uncompressed, or as PNG or JPEG"
        )


def _jpeg(data: bytes) -> None:
    # Entropy-coded data stuffs every 0xFF with 0x00, so FF DA marks a start of scan (or sits in
    # an APP segment's bytes: an over-count that only a file of 64 such segments reaches).
    scans = data.count(b"\xff\xda")
    if scans > MAX_JPEG_SCANS:
        raise _refuse(
            f"this JPEG has {scans:,} scans, more than the {MAX_JPEG_SCANS} any encoder writes "
            "(each is decoded in full)"
        )


def _png(data: bytes) -> None:
    if len(data) < PNG_SIGNATURE_BYTES + CHUNK_HEAD * MAX_PNG_CHUNKS:
        return  # too short to hold that many chunks: nothing to walk
    offset, chunks = PNG_SIGNATURE_BYTES, 0
    while offset + 8 <= len(data):
        length = struct.unpack_from(">I", data, offset)[0]
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise _refuse(
                f"this PNG has more than {MAX_PNG_CHUNKS:,} chunks, far more than any encoder "
                "writes (each is read one by one)"
            )
        if data[offset + 4 : offset + 8] == b"IEND":
            return
        offset += CHUNK_HEAD + length


CHECKS = {"BMP": _bmp, "JPEG": _jpeg, "PNG": _png}


def check_encoding(kind: str, data: bytes) -> None:
    """ImageRejected (422, ``slow_encoding``) for an encoding refused up front."""
    check = CHECKS.get(kind)
    if check is not None:
        check(data)
