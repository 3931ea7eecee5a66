"""Bad inputs, one table: what hundreds of phones and invented specs can send, against a real
uvicorn server started as production runs it (test_limits_server.py).

Each case asserts its status and error code (and the decoder's ``problem`` for a picture), that
the server still answers /healthz afterwards (a liveness check: the latency is measured, not
asserted), and that the server's peak RSS during the case stayed under 50 MB above its RSS
before it (VmHWM, reset before each case).

Memory is also checked across the whole run: one server takes every case, and its RSS after the
last must stay within 100 MB of its RSS after the warm-up. A leak too small for any one case
(5 MB per request is 5 MB per case) adds up over the table's hundred-odd requests and fails it.

What each case measured (its time, the probe's latency, the RSS growth) is written to
artifacts/reliability/bad-inputs.json, which `make reliability` reports in docs/reliability.md.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from scripts import hostile_images as hostile

from .test_limits_server import (
    MIB,
    ROOT,
    LiveServer,
    RawReply,
    chunked,
    exchange,
    plain,
    request_head,
    serving,
)

NET = "alexnet-lecture"
PREDICT = f"/api/predict/{NET}"
PREDICT_LIMIT = 10 * MIB  # the default, Settings.max_body_predict
RSS_GROWTH_LIMIT = 50 * 1000 * 1000
PER_UPLOAD_GROWTH_LIMIT = 250 * 1000 * 1000  # issue 14: what one hostile upload may cost
# What the whole table may leave behind: allocator caches and the pages' first renders, some
# tens of MB; a leak of 5 MB per request leaves over 300 MB (64 cases and their probes).
WHOLE_RUN_GROWTH_LIMIT = 100 * 1000 * 1000
BOUNDARY = "convatlas-bad-inputs"
SCRIPT = "<script>alert(1)</script>"
UNSUPPORTED = "unsupported_media_type"

Send = Callable[[LiveServer], RawReply]
RECORD = ROOT / "artifacts" / "reliability" / "bad-inputs.json"


@dataclass(frozen=True)
class Case:
    name: str
    send: Send
    status: int
    code: str | None = None  # the envelope's code; None for a 200
    problem: str | None = None  # what the image decoder found, for a refused picture
    absent: bytes | None = None  # bytes the answer must not echo
    # A decode worker's cost is bounded by its data cap (the per-picture budget + 32 MiB) and
    # the deadline; a case that runs one to its deadline is held to the per-upload bound.
    growth_limit: int = RSS_GROWTH_LIMIT


# Requests.


def post(path: str, body: bytes, content_type: str, **headers: str) -> Send:
    all_headers = {"Content-Type": content_type, "Content-Length": str(len(body)), **headers}
    return lambda server: exchange(server.port, request_head("POST", path, all_headers), [body])


def form(*parts: tuple[str, str | None, bytes], boundary: str = BOUNDARY) -> bytes:
    """A multipart/form-data body: (field name, filename or None, data) per part."""
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        out += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


FORM_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def upload(data: bytes, filename: str = "photo.jpg", field: str = "image") -> Send:
    return post(PREDICT, form((field, filename, data)), FORM_TYPE)


def upload_with_type(body: bytes, content_type: str) -> Send:
    return post(PREDICT, body, content_type)


def streamed(path: str, headers: dict[str, str], body: Callable[[], Any]) -> Send:
    return lambda server: exchange(server.port, request_head("POST", path, headers), body())


def spec(raw: bytes) -> Send:
    return post("/api/analyze", raw, "application/json")


def spec_json(value: object) -> Send:
    return spec(json.dumps(value).encode())


# Pictures, made here.


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), x ^ y], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def noise(width: int, height: int) -> Image.Image:
    """Pixels that do not compress: a cut file loses pixels, not just its end marker."""
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def jpeg() -> bytes:
    return encode(gradient(), "JPEG", quality=90)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, bit_depth: int, colour: int, rows: int) -> bytes:
    """A PNG header for width x height, then ``rows`` rows of zeros, compressed as they go:
    20000 x 20000 at one bit a pixel is 48 KB on the wire and 400 Mpx once decoded."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    row = b"\x00" * (1 + (width * bit_depth + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(rows)) + packer.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )


def exif_jpeg(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(gradient(), "JPEG", quality=90, exif=exif.tobytes())


def sixteen_bit_grey() -> bytes:
    ramp = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    return encode(Image.fromarray(ramp), "PNG")


def transparent_rgba() -> bytes:
    return encode(Image.new("RGBA", (64, 48), (255, 0, 0, 0)), "PNG")


def palette_with_transparency() -> bytes:
    image = gradient().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(image, "PNG", transparency=0)


def many_frames_gif(frames: int = 2000) -> bytes:
    first, *rest = (Image.new("P", (16, 16), i % 2) for i in range(frames))
    return encode(first, "GIF", save_all=True, append_images=rest, duration=10, loop=0)


def tiff() -> bytes:
    return encode(gradient(), "TIFF")


def padded_jpeg(total_body: int) -> bytes:
    """A JPEG with bytes after its end marker (decoders ignore them), sized so that its whole
    multipart body is ``total_body`` bytes."""
    image = jpeg()
    overhead = len(form(("image", "photo.jpg", b"")))
    return image + b"\0" * (total_body - overhead - len(image))


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64

# Specs.

TINY: dict[str, Any] = {
    "name": "tiny",
    "input": {"height": 32, "width": 32, "channels": 3},
    "layers": [{"kind": "conv", "out_channels": 8, "kernel": 3}, {"kind": "relu"}],
}


def with_input(**sizes: int) -> dict[str, Any]:
    return {**TINY, "input": {**TINY["input"], **sizes}}


def with_layers(layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {**TINY, "layers": layers}


TINY_BYTES = json.dumps(TINY).encode()


def figured(**figure: Any) -> dict[str, Any]:
    """TINY with a lecture figure on its first layer, its fields as given."""
    stated = {"ref": 1, "says": "x", "quantity": "params", "value": 1.5, "unit": "million"}
    layer = {**TINY["layers"][0], "lecture": [stated | figure]}
    if "factors" in figure:
        del layer["lecture"][0]["value"], layer["lecture"][0]["unit"]
    return with_layers([layer, *TINY["layers"][1:]])


def custom_page(value: dict[str, Any]) -> Send:
    param = base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
    head = request_head("GET", f"/custom?spec={param}", {"Accept": "text/html"})
    return lambda server: exchange(server.port, head)


def png(image: Image.Image) -> bytes:
    return encode(image, "PNG")


CASES = [
    # The multipart envelope.
    Case("no file", post(PREDICT, form(("note", None, b"hi")), FORM_TYPE), 422, "invalid_request"),
    Case(
        "two files",
        post(PREDICT, form(("image", "a.jpg", jpeg()), ("image", "b.jpg", jpeg())), FORM_TYPE),
        422,
        "invalid_request",
    ),
    Case("the wrong field name", upload(jpeg(), field="picture"), 422, "invalid_request"),
    Case(
        "five fields",
        post(PREDICT, form(*[(f"f{i}", None, b"v") for i in range(5)]), FORM_TYPE),
        422,
        "invalid_request",
    ),
    Case(
        "a field of 16 KiB + 1",
        post(PREDICT, form(("note", None, b"n" * (16 * 1024 + 1))), FORM_TYPE),
        413,
        "payload_too_large",
    ),
    Case(
        "no boundary",
        upload_with_type(form(("image", "a.jpg", jpeg())), "multipart/form-data"),
        422,
        "invalid_request",
    ),
    Case(
        "a garbage boundary",
        upload_with_type(form(("image", "a.jpg", jpeg())), 'multipart/form-data; boundary="<>{}"'),
        422,
        "invalid_request",
    ),
    Case(  # control characters are not allowed in a header: the HTTP parser refuses it
        "a control character in the boundary",
        upload_with_type(
            form(("image", "a.jpg", jpeg())), 'multipart/form-data; boundary="\x01<>{}"'
        ),
        400,
        "bad_request",
    ),
    Case(
        "a ReDoS-shaped boundary",
        upload_with_type(
            form(("image", "a.jpg", jpeg())),
            'multipart/form-data; boundary="' + '\\"' * 4000 + ";" * 4000 + '"',
        ),
        422,
        "invalid_request",
    ),
    Case(
        "5 MB of CRLF before the boundary",
        post(PREDICT, b"\r\n" * 2_500_000 + form(("image", "a.jpg", jpeg())), FORM_TYPE),
        200,
    ),
    Case("not multipart at all", upload_with_type(jpeg(), "image/jpeg"), 415, UNSUPPORTED),
    Case("an empty multipart body", upload_with_type(b"", FORM_TYPE), 422, "invalid_request"),
    # Content-Length and size.
    Case(
        "a negative Content-Length",
        streamed(PREDICT, {"Content-Type": FORM_TYPE, "Content-Length": "-1"}, lambda: [b"x"]),
        400,
        "bad_request",
    ),
    Case(
        "a non-numeric Content-Length",
        streamed(PREDICT, {"Content-Type": FORM_TYPE, "Content-Length": "lots"}, lambda: [b"x"]),
        400,
        "bad_request",
    ),
    Case(
        "a body 1 byte over the limit, declared",
        streamed(
            PREDICT,
            {"Content-Type": FORM_TYPE, "Content-Length": str(PREDICT_LIMIT + 1)},
            lambda: plain(PREDICT_LIMIT + 1),
        ),
        413,
        "payload_too_large",
    ),
    Case(
        "a body 1 byte over the limit, chunked",
        streamed(
            PREDICT,
            {"Content-Type": FORM_TYPE, "Transfer-Encoding": "chunked"},
            lambda: chunked(PREDICT_LIMIT + 1, size=PREDICT_LIMIT + 1),
        ),
        413,
        "payload_too_large",
    ),
    Case(
        "a body 1 KiB under the limit",
        upload(padded_jpeg(PREDICT_LIMIT - 1024)),
        200,
    ),
    Case(
        "1 GiB chunked",
        streamed(
            PREDICT,
            {"Content-Type": FORM_TYPE, "Transfer-Encoding": "chunked"},
            lambda: chunked(1024 * MIB),
        ),
        413,
        "payload_too_large",
    ),
    Case(
        "1 GiB declared",
        streamed(
            PREDICT,
            {"Content-Type": FORM_TYPE, "Content-Length": str(1024 * MIB)},
            lambda: plain(1024 * MIB),
        ),
        413,
        "payload_too_large",
    ),
    # Files that are not pictures we read.
    Case("a 0-byte file", upload(b""), 422, "invalid_image", "empty"),
    Case(
        "random bytes",
        upload(np.random.default_rng(7).bytes(50_000)),
        415,
        UNSUPPORTED,
        "unsupported_format",
    ),
    Case(
        "HTML posing as JPEG",
        upload(HTML, "cat.jpg"),
        415,
        UNSUPPORTED,
        "unsupported_format",
        b"<script",
    ),
    Case("SVG", upload(SVG, "a.svg"), 415, UNSUPPORTED, "unsupported_format", b"<script"),
    Case("PDF", upload(PDF, "a.pdf"), 415, UNSUPPORTED, "unsupported_format"),
    Case("EPS", upload(EPS, "a.eps"), 415, UNSUPPORTED, "unsupported_format"),
    Case("TIFF", upload(tiff(), "a.tiff"), 415, UNSUPPORTED, "unsupported_format"),
    Case("HEIC", upload(HEIC, "a.heic"), 415, UNSUPPORTED, "unsupported_format"),
    # Pictures whose size is the attack.
    Case(
        "a 20000x20000 1-bit PNG (48 KB)",
        upload(png_claiming(20_000, 20_000, 1, 0, 20_000), "bomb.png"),
        413,
        "payload_too_large",
        "too_large",
    ),
    Case(
        "a PNG header claiming 100000x100000",
        upload(png_claiming(100_000, 100_000, 8, 2, 1), "huge.png"),
        413,
        "payload_too_large",
        "too_large",
    ),
    Case(
        "1x100000",
        upload(png(Image.new("L", (1, 100_000), 128)), "strip.png"),
        422,
        "invalid_image",
        "too_elongated",
    ),
    Case("a truncated JPEG", upload(jpeg()[:400]), 422, "invalid_image", "undecodable"),
    Case(
        "a truncated PNG",
        upload(png(noise(128, 128))[:20_000], "cut.png"),
        422,
        "invalid_image",
        "undecodable",
    ),
    # Pictures that are fine, however unusual.
    Case("CMYK", upload(encode(gradient().convert("CMYK"), "JPEG")), 200),
    Case("16-bit grey", upload(sixteen_bit_grey(), "grey16.png"), 200),
    Case("RGBA with alpha 0", upload(transparent_rgba(), "clear.png"), 200),
    Case("a palette with transparency", upload(palette_with_transparency(), "p.png"), 200),
    Case("a 2000-frame GIF", upload(many_frames_gif(), "anim.gif"), 200),
    Case("EXIF orientation 6", upload(exif_jpeg(6)), 200),
    Case("EXIF orientation 99", upload(exif_jpeg(99)), 200),
    Case("a 1x1 image", upload(png(Image.new("RGB", (1, 1), (9, 9, 9))), "dot.png"), 200),
    # Hostile filenames: never used, never echoed.
    Case("a path as filename", upload(jpeg(), "../../../etc/passwd"), 200, absent=b"passwd"),
    Case("markup as filename", upload(jpeg(), f"{SCRIPT}.jpg"), 200, absent=b"<script"),
    Case("a right-to-left filename", upload(jpeg(), "\u202egpj.exe"), 200, absent=b"exe"),
    Case(
        "a 10,000-character filename",
        upload(jpeg(), "f" * 10_000 + ".jpg"),
        422,
        "invalid_request",
        absent=b"ffffffff",
    ),
    # Which net.
    Case(
        "an unknown model",
        post("/api/predict/lenet", form(("image", "a.jpg", jpeg())), FORM_TYPE),
        404,
        "unknown_net",
    ),
    Case(
        "a model id that is markup",
        post("/api/predict/%3Cscript%3E", form(("image", "a.jpg", jpeg())), FORM_TYPE),
        404,
        "unknown_net",
        absent=b"<script",
    ),
    Case(
        "a model id that is a path",
        post("/api/predict/..%2F..%2Fetc%2Fpasswd", form(("image", "a.jpg", jpeg())), FORM_TYPE),
        404,
        "not_found",
        absent=b"passwd",
    ),
    # Specs.
    Case("NaN", spec(b'{"name": "x", "input": NaN, "layers": []}'), 422, "invalid_json"),
    Case("Infinity", spec(b'{"name": "x", "input": {"height": Infinity}}'), 422, "invalid_json"),
    Case("-Infinity", spec(b'{"name": "x", "input": {"height": -Infinity}}'), 422, "invalid_json"),
    Case("1e400", spec(b'{"name": "x", "input": {"height": 1e400}}'), 422, "invalid_json"),
    Case(
        "a 5000-digit integer",
        spec(b'{"name": "x", "input": {"height": ' + b"7" * 5000 + b"}}"),
        422,
        "invalid_json",
    ),
    Case(
        "JSON nested 100,000 deep",
        spec(b"[" * 100_000 + b"]" * 100_000),
        422,
        "invalid_json",
    ),
    Case(
        "a 300 KB spec",
        spec_json({**TINY, "notes": "n" * 300_000}),
        413,
        "payload_too_large",
    ),
    Case("129 layers", spec_json(with_layers([{"kind": "relu"}] * 129)), 422, "invalid_spec"),
    Case(
        "10^9 filters",
        spec_json(with_layers([{"kind": "conv", "out_channels": 10**9, "kernel": 3}])),
        422,
        "invalid_spec",
    ),
    Case(
        "a 3x10^6x10^6 input",
        spec_json(with_input(height=3, width=10**6, channels=10**6)),
        422,
        "invalid_spec",
    ),
    Case(
        "totals over the limits (1e12 MACs)",
        spec_json(
            with_input(height=4096, width=4096, channels=8192)
            | {"layers": [{"kind": "conv", "out_channels": 8192, "kernel": 31, "padding": 15}]}
        ),
        422,
        "invalid_spec",
    ),
    Case(
        "a string where a number goes",
        spec_json(with_layers([{"kind": "conv", "out_channels": "8", "kernel": 3}])),
        422,
        "invalid_spec",
    ),
    Case(
        "an unknown key",
        spec_json(with_layers([{"kind": "relu", "evil": SCRIPT}])),
        422,
        "invalid_spec",
        absent=b"<script",
    ),
    Case("a spec as text/plain", post("/api/analyze", b"{}", "text/plain"), 415, UNSUPPORTED),
    Case(
        "<script> in a wrong layer's name",
        spec_json(with_layers([{"kind": "conv", "name": SCRIPT, "out_channels": 1, "kernel": 99}])),
        422,
        "invalid_spec",
        absent=b"<script",
    ),
    Case(
        "<script> in a layer name (JSON)",
        spec_json(with_layers([{"kind": "relu", "name": SCRIPT}])),
        200,
    ),
    Case(
        "<script> in a layer name (the custom page)",
        custom_page(with_layers([{"kind": "relu", "name": SCRIPT}]) | {"name": SCRIPT}),
        200,
        absent=SCRIPT.encode(),
    ),
    # Issue 14: what a spec's media type, encoding and figures may be.
    Case(
        "a spec with no Content-Type",
        lambda server: exchange(
            server.port,
            request_head("POST", "/api/analyze", {"Content-Length": str(len(TINY_BYTES))}),
            [TINY_BYTES],
        ),
        415,
        UNSUPPORTED,
    ),
    Case("a spec in UTF-16", spec(json.dumps(TINY).encode("utf-16")), 415, UNSUPPORTED),
    Case("a spec in UTF-32 (no BOM)", spec(json.dumps(TINY).encode("utf-32-le")), 415, UNSUPPORTED),
    Case("a figure's decimals of 10^8", spec_json(figured(decimals=10**8)), 422, "invalid_spec"),
    Case("a figure's value of 10^400", spec_json(figured(value=10**400)), 422, "invalid_spec"),
    Case(
        "factors past Python's digit limit",
        spec_json(figured(factors=[10**1000] * 5)),
        422,
        "invalid_spec",
    ),
    Case(
        "a figure's decimals of 10^8 (the custom page)",
        custom_page(figured(decimals=10**8)),
        200,
    ),
    # Issue 14: pictures that cost far more to decode than their size.
    Case("an RLE8 BMP", upload(hostile.rle_bmp()), 422, "invalid_image", "slow_encoding"),
    Case(
        "a JPEG of 1,009 scans",
        upload(hostile.many_scan_jpeg()),
        422,
        "invalid_image",
        "slow_encoding",
    ),
    Case(
        "a PNG of 200,000 chunks",
        upload(hostile.chunk_flood_png()),
        422,
        "invalid_image",
        "slow_encoding",
    ),
    Case(
        "a 38-byte 7000x7000 lossless WebP",
        upload(hostile.lossless_webp()),
        413,
        "payload_too_large",
        "over_budget",
    ),
    Case(
        "a 186-byte animated WebP of 5000x5000",
        upload(hostile.animated_webp()),
        413,
        "payload_too_large",
        "over_budget",
    ),
    Case(
        "a 16-bit greyscale PNG of 7000x7000",
        upload(hostile.greyscale16_png()),
        413,
        "payload_too_large",
        "over_budget",
    ),
    # No rule refuses these (a JPEG may carry comments and fill bytes): the first is stopped by
    # the header's memory cap, the second at the decode deadline, each worker then killed.
    Case(
        "a JPEG of 2,500,000 comment markers",
        upload(hostile.marker_flood_jpeg(2_500_000)),
        413,
        "payload_too_large",
        "over_budget",
        growth_limit=PER_UPLOAD_GROWTH_LIMIT,
    ),
    Case(
        "a JPEG of 10,000,000 fill bytes",
        upload(hostile.fill_byte_jpeg()),
        422,
        "invalid_image",
        "decode_timeout",
        growth_limit=PER_UPLOAD_GROWTH_LIMIT,
    ),
]
# The table's server stops a decode after 2 s of CPU time (the default is 5 s): the fill-byte
# JPEG takes about 7 s on a 2-core box, so it is stopped on any machine up to 3 times as fast.
TABLE_ENV = {"CONVATLAS_DECODE_DEADLINE_S": "2"}


@pytest.fixture(scope="module")
def measured() -> Any:
    """What each case measured, written out once the table has run."""
    figures: dict[str, dict[str, Any]] = {}
    yield figures
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(figures, indent=1) + "\n")


@dataclass
class TableRun:
    """The one server that takes every case, its RSS once warmed up, and the cases it took."""

    server: LiveServer
    rss_after_warm_up: int
    taken: set[str] = field(default_factory=set)


@pytest.fixture(scope="module")
def table_run(models_root: Path) -> Iterator[TableRun]:
    with serving(models_root, TABLE_ENV) as live:
        warm_up(live)
        yield TableRun(live, live.rss())


def warm_up(server: LiveServer) -> None:
    """Load what a first request loads (the net's session, the spec checks), so that each case
    measures only what it costs itself."""
    for send in (upload(jpeg()), spec_json(TINY), custom_page(TINY)):
        assert send(server).status == 200


def test_the_table_has_the_cases_the_issue_asks_for() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_bad_input_gets_its_answer_and_the_server_stays_up(
    table_run: TableRun, measured: dict[str, dict[str, Any]], case: Case
) -> None:
    take(table_run, measured, case)


def take(table_run: TableRun, measured: dict[str, dict[str, Any]], case: Case) -> None:
    """Send one case to the table's server and check its answer, liveness and peak RSS."""
    server = table_run.server
    table_run.taken.add(case.name)
    server.reset_peak()
    before = server.rss()
    started = time.perf_counter()
    reply = case.send(server)
    took = time.perf_counter() - started
    assert reply.status == case.status, reply.body[:500]
    if case.code is not None:
        error = reply.error()
        assert error["code"] == case.code
        assert "Traceback" not in error["message"]
    if case.problem is not None:
        assert reply.error()["problem"] == case.problem
    if case.absent is not None:
        assert case.absent not in reply.body
    probe_started = time.perf_counter()
    assert server.healthy()
    probe = time.perf_counter() - probe_started
    growth = server.peak() - before
    measured[case.name] = {
        "status": reply.status,
        "code": reply.error()["code"] if case.code else None,
        "answer_ms": round(took * 1000, 1),
        "healthz_ms": round(probe * 1000, 1),
        "rss_growth_mb": round(growth / 1e6, 1),
    }
    assert growth < case.growth_limit, f"RSS grew by {growth / 1e6:.0f} MB"


def test_the_whole_table_leaves_the_servers_memory_bounded(
    table_run: TableRun, measured: dict[str, dict[str, Any]]
) -> None:  # measured: cases taken here are recorded with the others
    """After every case (those not yet taken by this server are sent now, so this holds when
    run alone too), the RSS is within WHOLE_RUN_GROWTH_LIMIT of the warmed-up server's."""
    for case in CASES:
        if case.name not in table_run.taken:
            take(table_run, measured, case)
    growth = table_run.server.rss() - table_run.rss_after_warm_up
    assert growth < WHOLE_RUN_GROWTH_LIMIT, f"RSS grew by {growth / 1e6:.0f} MB over the table"
