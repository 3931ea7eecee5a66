"""The inference service the web layer calls: image bytes in, top-5 or feature maps out.

    service = InferenceService(get_settings())
    service.predict("vgg16", image_bytes)          -> PredictResult
    service.predict_many(["vgg16", "alexnet-2012"], image_bytes) -> list[PredictResult]
    service.feature_maps("vgg16", image_bytes)     -> FeatureMapsResult
    service.status()                               -> ServiceStatus (for /readyz)
    service.close()                                -> stops the backend (at shutdown)

Each call decodes the upload and preprocesses it for the net in a worker process killed at a
deadline (decoding.py, over images.py), hands the tensor to the backend
(backend.py; in-process ONNX Runtime, local.py, by default) and formats the answer. Refusals are
typed (errors.py): UnknownModel (404), ModelUnavailable and ModelLoading (503), ImageRejected
(413/415/422), Overloaded and InferenceTimeout (503 + retry_after_s), InferenceFailed (500).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.inference import heatmaps
from app.inference.backend import AnnouncesArrivals, BatchOutput, InferenceBackend, Outputs
from app.inference.decoding import DecodePool
from app.inference.errors import ModelUnavailable
from app.inference.integrity import Verifier
from app.inference.labels import labels
from app.inference.local import LocalBackend
from app.inference.results import (
    FeatureMapsResult,
    PredictResult,
    ServedBy,
    ServiceStatus,
    Timings,
    TopClass,
)
from app.inference.sessions import SessionFactory, ort_session
from app.repository.manifest import Manifest, Preprocess
from app.settings import Settings
from app.specs import Volume, builtin_registry

TOP_K = 5


@dataclass(frozen=True)
class Ran:
    """A backend's answer for one image, with what preprocessing it for the net took."""

    output: BatchOutput
    preprocess_ms: float


@dataclass(frozen=True)
class Decoded:
    """The upload as each net's input tensor, one per distinct preprocessing."""

    batches: dict[Preprocess, tuple[NDArray[np.float32], float]]  # tensor, preprocess ms
    started: float  # when the request's work began: the origin of its total time
    decode_ms: float


class InferenceService:
    def __init__(
        self,
        settings: Settings,
        known_ids: Sequence[str] | None = None,
        *,
        open_session: SessionFactory = ort_session,
        verifier: Verifier | None = None,
        backend: InferenceBackend | None = None,
    ) -> None:
        """``backend`` runs the nets; by default ONNX Runtime in this process (local.py) over
        Settings.models_dir, opening files with ``open_session`` (tests pass a wrapper to make
        runs stall, raise or return NaN) and verifying them with ``verifier``."""
        self._settings = settings
        self._decoder = DecodePool(settings)
        known = list(known_ids) if known_ids is not None else builtin_registry().ids()
        self._backend: InferenceBackend = backend or LocalBackend(
            settings, known, open_session=open_session, verifier=verifier
        )

    def predict(self, model_id: str, image_bytes: bytes) -> PredictResult:
        """The top-5 classes of one image for one net."""
        with self._arriving([model_id], "logits") as manifests:
            decoded = self._decode(image_bytes, manifests)
            output = self._run(manifests[0], decoded, "logits")
        return self._prediction(manifests[0], decoded, output)

    def predict_many(self, model_ids: Sequence[str], image_bytes: bytes) -> list[PredictResult]:
        """The same image through several nets, decoded once; results in the order asked."""
        with self._arriving(model_ids, "logits") as manifests:
            decoded = self._decode(image_bytes, manifests)
            outputs = [self._run(manifest, decoded, "logits") for manifest in manifests]
        pairs = zip(manifests, outputs, strict=True)
        return [self._prediction(manifest, decoded, output) for manifest, output in pairs]

    def feature_maps(self, model_id: str, image_bytes: bytes) -> FeatureMapsResult:
        """Each conv and pool layer's output volume and its most active channels as heatmaps."""
        with self._arriving([model_id], "features") as manifests:
            decoded = self._decode(image_bytes, manifests)
            ran = self._run(manifests[0], decoded, "features")
        manifest, output = manifests[0], ran.output
        k, side = self._settings.feature_maps_top_k, self._settings.feature_map_side
        layers = [
            heatmaps.layer_maps(volume[0], described, k, side)
            for volume, described in zip(
                output.feature_maps or [], manifest.features.outputs, strict=True
            )
        ]
        volume = Volume(
            height=manifest.input.height,
            width=manifest.input.width,
            channels=manifest.input.channels,
        )
        return FeatureMapsResult(
            id=manifest.id,
            provider=output.provider,
            weights=manifest.weights.kind,
            input=volume,
            layers=layers,
            timings_ms=_timings(decoded, ran),
            served_by=_served_by(output),
        )

    def warm(self) -> None:
        """Start what the first upload would otherwise wait for: a decode worker."""
        self._decoder.warm()

    def status(self) -> ServiceStatus:
        return self._backend.status()

    def manifest(self, model_id: str) -> Manifest:
        return self._backend.manifest(model_id)

    def close(self) -> None:
        self._backend.close()
        self._decoder.close()

    @contextmanager
    def _arriving(self, model_ids: Sequence[str], outputs: Outputs) -> Iterator[list[Manifest]]:
        """The nets' manifests (refusing an unknown or unavailable net before decoding), each
        announced to a backend that batches while uploads decode."""
        manifests = [self._backend.manifest(model_id) for model_id in model_ids]
        with ExitStack() as stack:
            if isinstance(self._backend, AnnouncesArrivals):
                for model_id in model_ids:
                    stack.enter_context(self._backend.arriving(model_id, outputs))
            yield manifests

    def _decode(self, image_bytes: bytes, manifests: Sequence[Manifest]) -> Decoded:
        started = time.perf_counter()
        steps = list(dict.fromkeys(manifest.preprocess for manifest in manifests))
        prepared = self._decoder.prepare(image_bytes, steps)
        batches = zip(prepared.batches, prepared.preprocess_ms, strict=True)
        return Decoded(dict(zip(steps, batches, strict=True)), started, prepared.decode_ms)

    def _run(self, manifest: Manifest, decoded: Decoded, outputs: Outputs) -> Ran:
        batch, preprocess_ms = decoded.batches[manifest.preprocess]
        return Ran(
            self._backend.run(manifest.id, batch, outputs, self._deadline_s()), preprocess_ms
        )

    def _deadline_s(self) -> float:
        settings = self._settings
        return settings.load_deadline_s + settings.queue_deadline_s + settings.inference_deadline_s

    def _prediction(self, manifest: Manifest, decoded: Decoded, ran: Ran) -> PredictResult:
        logits = ran.output.logits
        if logits is None:
            raise ModelUnavailable(manifest.id, "the backend returned no class scores")
        return PredictResult(
            id=manifest.id,
            top5=top_classes(logits[0], manifest),
            provider=ran.output.provider,
            weights=manifest.weights.kind,
            timings_ms=_timings(decoded, ran),
            served_by=_served_by(ran.output),
        )


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


def _timings(decoded: Decoded, ran: Ran) -> Timings:
    return Timings(
        decode=round(decoded.decode_ms, 3),
        preprocess=round(ran.preprocess_ms, 3),
        queue=round(ran.output.queue_ms, 3),
        inference=round(ran.output.run_ms, 3),
        total=round((time.perf_counter() - decoded.started) * 1000, 3),
    )


def _served_by(output: BatchOutput) -> ServedBy | None:
    """Which node and replica ran it, where the backend says (a cluster's); None locally."""
    return None if output.served_by is None else ServedBy.model_validate(dict(output.served_by))
