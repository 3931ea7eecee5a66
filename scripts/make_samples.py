"""Make static/samples/ from scikit-image's wheel: the four sample photographs, as small JPEGs.

scikit-image is not a dependency; its wheel is only where these four public-domain (or CC0)
photographs come from, so they are taken out of it once and kept as data:

    pip download scikit-image --no-deps -d /tmp/skimage
    .venv/bin/python -m scripts.make_samples /tmp/skimage/scikit_image-*.whl

Each photograph is resized to at most SIDE pixels on its long side (the nets see 224 or 227),
and a square thumbnail (its middle) is made for the row of samples on the pages.
static/samples/NOTES.md names each one's source and licence; tests/web/test_samples.py holds the
files, the notes and the page's credits together.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / "static" / "samples"
# sample id -> the file inside the wheel
MEMBERS = {
    "chelsea": "skimage/data/chelsea.png",
    "coffee": "skimage/data/coffee.png",
    "rocket": "skimage/data/rocket.jpg",
    "astronaut": "skimage/data/astronaut.png",
}
SIDE = 512
THUMB_SIDE = 144  # a square, drawn 72 px a side: sharp at twice the pixel density
QUALITY = 88
THUMB_QUALITY = 80


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=False)
    return buffer.getvalue()


def _fit(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.size)
    if scale >= 1:
        return image
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.LANCZOS)


def _thumbnail(image: Image.Image) -> Image.Image:
    """The middle square of the photo, THUMB_SIDE pixels a side."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return square.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)


def make(wheel: Path, out: Path = SAMPLES) -> None:
    (out / "thumbs").mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name, member in MEMBERS.items():
            image = Image.open(io.BytesIO(archive.read(member))).convert("RGB")
            photo = _fit(image, SIDE)
            (out / f"{name}.jpg").write_bytes(_jpeg(photo, QUALITY))
            (out / "thumbs" / f"{name}.jpg").write_bytes(_jpeg(_thumbnail(photo), THUMB_QUALITY))
            print(f"{name}: {image.size} -> {photo.size}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="scikit-image's wheel (pip download)")
    make(parser.parse_args().wheel)


if __name__ == "__main__":
    main()
