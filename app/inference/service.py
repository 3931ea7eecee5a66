"""The inference service the web layer calls: image bytes in, top-5 or feature maps out.

    service = InferenceService(get_settings())
    service.predict("vgg16", image_bytes)          -> PredictResult
    service.predict_many(["vgg16", "alexnet-2012"], image_bytes) -> list[PredictResult]
    service.feature_maps("vgg16", image_bytes)     -> FeatureMapsResult
    service.status()                               -> ServiceStatus (for /readyz)

Refusals are typed (errors.py): UnknownModel (404), ModelUnavailable (503), ImageRejected
(413/415/422). Every method is safe to call from several threads at once: ONNX Runtime sessions
run concurrently, and loading and caching them is locked.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from PIL import Image

from app.inference import heatmaps
from app.inference.errors import ModelUnavailable, UnknownModel
from app.inference.images import decode, preprocess
from app.inference.labels import labels
from app.inference.manifest import Manifest, ManifestError, read_manifest
from app.inference.providers import CPU, CUDA, ProviderChoice, choose_provider
from app.inference.results import (
    FeatureMapsResult,
    ModelStatus,
    PredictResult,
    ServiceStatus,
    Timings,
    TopClass,
    Volume,
)
from app.inference.sessions import Loaded, SessionCache, SessionKey
from app.settings import Settings
from app.specs import builtin_registry

TOP_K = 5
BUILD_LOCK = ".build.lock"  # held by `convatlas models build` while it writes


@dataclass(frozen=True)
class Decoded:
    image: Image.Image
    decode_ms: float


class InferenceService:
    def __init__(self, settings: Settings, known_ids: Sequence[str] | None = None) -> None:
        self._settings = settings
        self._root = settings.models_dir
        self._known = list(known_ids) if known_ids is not None else builtin_registry().ids()
        self._sessions = SessionCache(settings.model_cache_bytes, self._load_session)
        self._choice: ProviderChoice | None = None
        self._choice_lock = threading.Lock()

    # The provider is chosen on first use, not at import: probing CUDA takes a moment.
    def provider(self) -> ProviderChoice:
        with self._choice_lock:
            if self._choice is None:
                self._choice = choose_provider(self._settings.providers)
            return self._choice

    def predict(self, model_id: str, image_bytes: bytes) -> PredictResult:
        """The top-5 classes of one image for one net."""
        manifest = self.manifest(model_id)
        decoded = self._decode(image_bytes)
        return self._predict(manifest, decoded)

    def predict_many(self, model_ids: Sequence[str], image_bytes: bytes) -> list[PredictResult]:
        """The same image through several nets, decoded once; results in the order asked."""
        manifests = [self.manifest(model_id) for model_id in model_ids]
        decoded = self._decode(image_bytes)
        return [self._predict(manifest, decoded) for manifest in manifests]

    def feature_maps(self, model_id: str, image_bytes: bytes) -> FeatureMapsResult:
        """Each conv and pool layer's output volume and its most active channels as heatmaps."""
        manifest = self.manifest(model_id)
        decoded = self._decode(image_bytes)
        started = time.perf_counter()
        batch = preprocess(decoded.image, manifest.preprocess, self._settings.max_image_pixels)
        prepared = time.perf_counter()
        loaded = self._session(manifest, "features")
        names = [output.output for output in manifest.features.outputs]
        outputs = run(loaded, names, {manifest.input.name: batch})
        ran = time.perf_counter()
        k, side = self._settings.feature_maps_top_k, self._settings.feature_map_side
        layers = [
            heatmaps.layer_maps(volume[0], output, k, side)
            for volume, output in zip(outputs, manifest.features.outputs, strict=True)
        ]
        timings = _timings(decoded.decode_ms, started, prepared, ran, time.perf_counter())
        volume = Volume(
            height=manifest.input.height,
            width=manifest.input.width,
            channels=manifest.input.channels,
        )
        return FeatureMapsResult(
            id=manifest.id,
            provider=loaded.provider,
            weights=manifest.weights.kind,
            input=volume,
            layers=layers,
            timings_ms=timings,
        )

    def status(self) -> ServiceStatus:
        choice = self.provider()
        loaded = {key.path: entry for key, entry in self._sessions.loaded().items()}
        return ServiceStatus(
            requested_provider=choice.requested,
            provider=choice.provider,
            provider_reason=choice.reason,
            models_dir=str(self._root),
            build_running=build_running(self._root),
            models=[self._model_status(model_id, loaded) for model_id in self._known],
        )

    def manifest(self, model_id: str) -> Manifest:
        """The manifest of a built net; UnknownModel or ModelUnavailable otherwise."""
        if model_id not in self._known:
            raise UnknownModel(model_id, self._known)
        try:
            manifest = read_manifest(self._root / model_id)
        except ManifestError as error:
            raise ModelUnavailable(model_id, self._unavailable_reason(model_id, error)) from None
        if manifest.id != model_id:
            raise ModelUnavailable(model_id, f"the folder holds the manifest of {manifest.id}")
        return manifest

    def _predict(self, manifest: Manifest, decoded: Decoded) -> PredictResult:
        started = time.perf_counter()
        batch = preprocess(decoded.image, manifest.preprocess, self._settings.max_image_pixels)
        prepared = time.perf_counter()
        loaded = self._session(manifest, "model")
        output = run(loaded, [manifest.output.name], {manifest.input.name: batch})[0]
        ran = time.perf_counter()
        top5 = top_classes(output[0], manifest)
        timings = _timings(decoded.decode_ms, started, prepared, ran, time.perf_counter())
        return PredictResult(
            id=manifest.id,
            top5=top5,
            provider=loaded.provider,
            weights=manifest.weights.kind,
            timings_ms=timings,
        )

    def _decode(self, image_bytes: bytes) -> Decoded:
        started = time.perf_counter()
        image = decode(image_bytes, self._settings.max_image_pixels)
        return Decoded(image, (time.perf_counter() - started) * 1000)

    def _session(self, manifest: Manifest, which: str) -> Loaded:
        file = manifest.model if which == "model" else manifest.features
        key = SessionKey(self._root / manifest.id / file.path, file.sha256)
        try:
            return self._sessions.get(key)
        except Exception as error:  # ORT's errors have no common base: a file it cannot load
            reason = f"onnxruntime cannot load {file.path}: {str(error).splitlines()[0]}"
            raise ModelUnavailable(manifest.id, reason) from error

    def _load_session(self, key: SessionKey) -> Loaded:
        """A session on the chosen provider; one that cannot run on CUDA is reloaded on the CPU."""
        choice = self.provider()
        session = _new_session(key.path, choice.session_providers)
        provider = session.get_providers()[0]
        if provider == CUDA:
            problem = _warm_up(session)
            if problem is not None:
                self._fall_back_to_cpu(f"a model failed on CUDA: {problem}")
                session, provider = _new_session(key.path, [CPU]), CPU
        return Loaded(session, provider, key.path.stat().st_size)

    def _fall_back_to_cpu(self, reason: str) -> None:
        with self._choice_lock:
            requested = self._settings.providers
            self._choice = ProviderChoice(requested, CPU, f"running on the CPU: {reason}")

    def _model_status(self, model_id: str, loaded: dict[Path, Loaded]) -> ModelStatus:
        try:
            manifest = self.manifest(model_id)
        except ModelUnavailable as error:
            return ModelStatus(
                id=model_id,
                available=False,
                loaded=False,
                provider=None,
                weights=None,
                weights_detail=None,
                reason=error.reason,
            )
        session = loaded.get(self._root / model_id / manifest.model.path)
        return ModelStatus(
            id=model_id,
            available=True,
            loaded=session is not None,
            provider=session.provider if session else None,
            weights=manifest.weights.kind,
            weights_detail=weights_detail(manifest),
            reason=None,
        )

    def _unavailable_reason(self, model_id: str, error: ManifestError) -> str:
        if build_running(self._root):
            return f"{error}; a build is running now"
        return f"{error}; run `convatlas models build {model_id}`"


def run(loaded: Loaded, names: list[str], feed: dict[str, NDArray[np.float32]]) -> list[Any]:
    """One ONNX Runtime run of a batch of one.

    The one place requests meet a session: a dynamic-batching queue (concurrent requests for
    one net merged into one run of up to 8) would go here, keyed by the session.
    """
    outputs: list[Any] = loaded.session.run(names, feed)
    return outputs


def top_classes(scores: NDArray[np.float32], manifest: Manifest) -> list[TopClass]:
    """The five most probable classes, most probable first; ties go to the lower index."""
    names = labels(manifest.labels.set)
    if len(names) != scores.shape[0]:
        raise ModelUnavailable(manifest.id, f"{scores.shape[0]} outputs for {len(names)} labels")
    probabilities = softmax(scores) if manifest.output.kind == "logits" else scores
    order = np.argsort(-probabilities.astype(np.float64), kind="stable")[:TOP_K]
    return [
        TopClass(rank=rank, index=int(i), label=names[i], probability=float(probabilities[i]))
        for rank, i in enumerate(order, start=1)
    ]


def softmax(logits: NDArray[np.float32]) -> NDArray[np.float64]:
    shifted = logits.astype(np.float64) - float(np.max(logits))
    exps = np.exp(shifted)
    result: NDArray[np.float64] = exps / exps.sum()
    return result


def weights_detail(manifest: Manifest) -> str:
    entry = manifest.weights
    if entry.kind == "pretrained":
        return f"pretrained: {entry.source} (sha256 {entry.sha256})"
    note = f"; {entry.note}" if entry.note else ""
    return f"untrained: seeded random weights, seed {entry.seed}{note}"


def build_running(root: Path) -> bool:
    """Whether `convatlas models build` holds the repository's build lock right now."""
    try:
        with (root / BUILD_LOCK).open("rb") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
    except FileNotFoundError:
        return False
    return False


def _new_session(path: Path, providers: list[str]) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # ORT warns, on every CUDA session, that it keeps shape arithmetic on the CPU by design.
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


def _warm_up(session: ort.InferenceSession) -> str | None:
    """Run zeros through a new CUDA session: it may load yet fail to run (an unsupported GPU)."""
    spec = session.get_inputs()[0]
    shape = [dim if isinstance(dim, int) else 1 for dim in spec.shape]
    try:
        session.run(None, {spec.name: np.zeros(shape, dtype=np.float32)})
    except Exception as error:  # any ORT failure: its first line says why
        return str(error).splitlines()[0]
    return None


def _timings(decode_ms: float, started: float, prepared: float, ran: float, done: float) -> Timings:
    return Timings(
        decode=round(decode_ms, 3),
        preprocess=round((prepared - started) * 1000, 3),
        inference=round((ran - prepared) * 1000, 3),
        total=round(decode_ms + (done - started) * 1000, 3),
    )
