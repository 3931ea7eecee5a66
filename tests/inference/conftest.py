"""A small model repository, built once per test session, and images the tests make themselves.

Two nets cover both input sizes: alexnet-lecture (227) and zfnet-2013 (224), untrained. The
heavier exports and their parity checks live in tests/nets/test_export.py.
"""

import io
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from app.inference.service import InferenceService
from app.inference.sessions import OrtSession, SessionFactory, ort_session
from app.nets.repository import build_models
from app.settings import Settings

NETS = ("alexnet-lecture", "zfnet-2013")


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    outcomes = build_models(NETS, untrained=True, root=root, say=lambda _: None)
    assert [outcome.status for outcome in outcomes] == ["built", "built"], outcomes
    return root


@pytest.fixture
def make_service(models_root: Path) -> Iterator[Callable[..., InferenceService]]:
    """Services over the test repository, with Settings overrides and, optionally, a session
    factory (``open_session``); each is closed after the test."""
    made: list[InferenceService] = []

    def make(open_session: SessionFactory = ort_session, **overrides: object) -> InferenceService:
        settings = Settings(models_dir=models_root, providers="cpu", build_on_start=False)
        service = InferenceService(settings.model_copy(update=overrides), open_session=open_session)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


class FaultySession:
    """A real ONNX Runtime session whose runs the test scripts through its Faults."""

    def __init__(self, session: OrtSession, faults: "Faults") -> None:
        self._session = session
        self._faults = faults

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, Any],
        run_options: Any = None,
    ) -> list[Any]:
        return self._faults.run(self._session, output_names, input_feed, run_options)

    def get_providers(self) -> list[str]:
        return self._session.get_providers()

    def get_inputs(self) -> list[Any]:
        return self._session.get_inputs()

    def get_outputs(self) -> list[Any]:
        return self._session.get_outputs()


class Faults:
    """An ``open_session`` for InferenceService: real sessions, each run recorded (its batch
    size) and, when ``actions`` says so, made to "hold" (until ``release``), "stall" (a hang
    that ignores ORT's terminate flag, until the test ends), "raise" or return "nan"."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.batches: list[int] = []
        self.actions: deque[str] = deque()
        self.holding = threading.Event()
        self.release = threading.Event()
        self.unstall = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, path: Path, providers: list[str], options: Any) -> OrtSession:
        with self._lock:
            self.opened.append(path.name)
        return FaultySession(ort_session(path, providers, options), self)

    def run(
        self,
        session: OrtSession,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, Any],
        run_options: Any,
    ) -> list[Any]:
        with self._lock:
            self.batches.append(len(next(iter(input_feed.values()))))
            action = self.actions.popleft() if self.actions else "run"
        if action == "hold":
            self.holding.set()
            self.release.wait()
        if action == "stall":
            self.unstall.wait()
        if action == "raise":
            raise RuntimeError("injected failure")
        outputs = session.run(output_names, input_feed, run_options)
        if action == "nan":
            outputs[0] = np.full_like(outputs[0], np.nan)
        return outputs


@pytest.fixture
def faults() -> Iterator[Faults]:
    scripted = Faults()
    yield scripted
    scripted.release.set()  # no held or stalled run outlives its test
    scripted.unstall.set()


@pytest.fixture
def service(make_service: Callable[..., InferenceService]) -> InferenceService:
    return make_service()


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
    """A gradient whose left half is fully transparent over black: alpha must not read as black."""
    rgba = photo_like().convert("RGBA")
    pixels = np.asarray(rgba).copy()
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


class Images:
    """The image helpers, for tests to call (conftest modules are not imported by name)."""

    photo_like = staticmethod(photo_like)
    encode = staticmethod(encode)
    uploads = UPLOADS


@pytest.fixture
def images() -> Images:
    return Images()


@pytest.fixture(params=sorted(UPLOADS))
def upload(request: pytest.FixtureRequest) -> tuple[str, bytes]:
    """Each kind of upload the issue names, as (description, file bytes)."""
    name: str = request.param
    return name, UPLOADS[name]()
