"""Fixtures shared across test folders: a small model repository and images the tests make.

The repository holds the lecture's two nets and zfnet-2013, untrained (the build takes about
20 s), and is built once per session by whichever test asks first; tests/web, tests/e2e and
tests/inference all use it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.repository.manifest import Preprocess

# The lecture's two nets (the compare page's default pair) and a 224-input net.
REPOSITORY_NETS = ("alexnet-lecture", "zfnet-lecture", "zfnet-2013")


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Imported here, not at the top: torch takes seconds to import, and most tests never need it.
    from app.building.build import build_models

    root = tmp_path_factory.mktemp("models")
    outcomes = build_models(REPOSITORY_NETS, untrained=True, root=root, say=lambda _: None)
    assert [outcome.status for outcome in outcomes] == ["built"] * len(REPOSITORY_NETS), outcomes
    return root


# torchvision's ImageNet transform as a manifest states it, for tests that preprocess by hand.
IMAGENET_STEPS = Preprocess(
    resize=256,
    crop=224,
    interpolation="bilinear",
    antialias=True,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
)


def photo_like(width: int = 320, height: int = 240) -> Image.Image:
    """Smooth colour gradients with a bright disc: varied enough to wake many channels."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 255 * x / (width - 1)
    green = 255 * y / (height - 1)
    blue = 128 + 100 * np.sin(x / 17) * np.cos(y / 23)
    disc = (x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (min(width, height) / 5) ** 2
    rgb = np.stack([red, green, blue], axis=-1)
    rgb[disc] = (250, 240, 60)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def rgba_png() -> bytes:
    """The left half fully transparent over black: alpha must not read as black."""
    pixels = np.asarray(photo_like().convert("RGBA")).copy()
    pixels[:, : pixels.shape[1] // 2] = (0, 0, 0, 0)
    return encode(Image.fromarray(pixels), "PNG")


def exif_rotated_jpeg() -> bytes:
    """Stored landscape (320 x 240) with EXIF orientation 6: displayed as portrait 240 x 320."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    return encode(photo_like(), "JPEG", quality=95, exif=exif.tobytes())


UPLOADS: dict[str, Callable[[], bytes]] = {
    "photo-like gradient JPEG": lambda: encode(photo_like(), "JPEG", quality=92),
    "PNG with alpha": rgba_png,
    "grayscale JPEG": lambda: encode(photo_like().convert("L"), "JPEG", quality=92),
    "CMYK JPEG": lambda: encode(photo_like().convert("CMYK"), "JPEG", quality=92),
    "EXIF-rotated JPEG": exif_rotated_jpeg,
}


@pytest.fixture(scope="session")
def repository_nets() -> tuple[str, ...]:
    """The nets models_root holds."""
    return REPOSITORY_NETS


@pytest.fixture(scope="session")
def sample_uploads() -> dict[str, bytes]:
    """Each kind of upload the live-inference issue names: description -> file bytes."""
    return {name: make() for name, make in UPLOADS.items()}


@pytest.fixture(scope="session")
def photo_jpeg(sample_uploads: dict[str, bytes]) -> bytes:
    return sample_uploads["photo-like gradient JPEG"]


@pytest.fixture(params=sorted(UPLOADS))
def upload(request: pytest.FixtureRequest, sample_uploads: dict[str, bytes]) -> tuple[str, bytes]:
    """One test per kind of upload: (description, file bytes)."""
    name: str = request.param
    return name, sample_uploads[name]


class Images:
    """The image helpers, for tests to call (conftest modules are not imported by name)."""

    photo_like = staticmethod(photo_like)
    encode = staticmethod(encode)
    uploads = UPLOADS


@pytest.fixture
def images() -> Images:
    return Images()
