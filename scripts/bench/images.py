"""Photo-like test JPEGs, made deterministically (smooth shading plus sensor-like noise).

Made once and kept in artifacts/bench/images/: the 12 MP one takes a few seconds to encode.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from scripts.bench.common import ROOT

FOLDER = ROOT / "artifacts" / "bench" / "images"
VGA = (640, 480)
TWELVE_MP = (4032, 3024)  # a phone camera's 4:3 frame
QUALITY = 90


def jpeg(size: tuple[int, int]) -> bytes:
    width, height = size
    path = FOLDER / f"photo-{width}x{height}-q{QUALITY}.jpg"
    if not path.exists():
        FOLDER.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        _photo(width, height).save(buffer, "JPEG", quality=QUALITY)
        path.write_bytes(buffer.getvalue())
    return path.read_bytes()


def _photo(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.empty((height, width, 3), dtype=np.float32)
    for channel in range(3):
        f = rng.uniform(2, 12, size=3) * 2 * np.pi
        p = rng.uniform(0, 2 * np.pi, size=3)
        pixels[..., channel] = (
            128
            + 40 * np.sin(x / width * f[0] + p[0]) * np.cos(y / height * f[1] + p[1])
            + 30 * np.sin((x + y) / (width + height) * f[2] + p[2])
        )
    pixels += rng.normal(0, 6, size=pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def describe(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    return f"{width}x{height} JPEG, q{QUALITY}, {len(data) / 1e6:.2f} MB"
