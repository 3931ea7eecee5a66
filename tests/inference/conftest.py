"""Services over the shared test repository (tests/conftest.py), copies of it to break, and a
seam for faults.

The repository covers both input sizes: alexnet-lecture (227) and zfnet-2013 (224), untrained.
The heavier exports and their parity checks live in tests/nets/test_export.py.
"""

import shutil
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.inference.integrity import Verifier
from app.inference.service import InferenceService
from app.inference.sessions import OrtSession, SessionFactory, ort_session
from app.settings import Settings


@pytest.fixture
def make_service(models_root: Path) -> Iterator[Callable[..., InferenceService]]:
    """Services over the test repository, with Settings overrides and, optionally, a session
    factory (``open_session``) and a background ``verifier``; each is closed after the test."""
    made: list[InferenceService] = []

    def make(
        open_session: SessionFactory = ort_session,
        verifier: Verifier | None = None,
        **overrides: object,
    ) -> InferenceService:
        settings = Settings(models_dir=models_root, providers="cpu", build_on_start=False)
        service = InferenceService(
            settings.model_copy(update=overrides), open_session=open_session, verifier=verifier
        )
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


@pytest.fixture
def repository(models_root: Path, tmp_path: Path) -> Path:
    """A copy of the test repository whose files are hard links: cheap, and safe to break by
    replacing files."""
    root = tmp_path / "models"
    shutil.copytree(
        models_root,
        root,
        copy_function=lambda source, target: Path(target).hardlink_to(source),
        ignore=shutil.ignore_patterns(".build.lock"),
    )
    return root


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
