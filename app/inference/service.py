"""The inference service the web layer calls: image bytes in, top-5 or feature maps out.

    service = InferenceService(get_settings())
    service.predict("vgg16", image_bytes)          -> PredictResult
    service.predict_many(["vgg16", "alexnet-2012"], image_bytes) -> list[PredictResult]
    service.feature_maps("vgg16", image_bytes)     -> FeatureMapsResult
    service.status()                               -> ServiceStatus (for /readyz)
    service.close()                                -> stops the workers (at shutdown)

Refusals are typed (errors.py): UnknownModel (404), ModelUnavailable (503), ImageRejected
(413/415/422), Overloaded (503 + retry_after_s), InferenceTimeout (503 + retry_after_s) and
InferenceFailed (500). Every method is safe to call from many threads at once: each request
decodes and preprocesses in its own thread, then joins the scheduler's queue (scheduler.py), whose
one worker loads models (one at a time) and runs batches of up to Settings.batch_max images of
one net. A call holds its thread for at most the queue deadline plus the inference deadline.

A model file is checked when it loads: its sha256 against the manifest, its input and outputs
against the manifest's. A file that fails is remembered as broken, by its identity on disk, so
the net reports the reason (status(), predict) without reloading it on every request, until a
rebuild renames a new file into place. Besides, every built file's sha256 is verified in the
background from the start (integrity.py): a file damaged in place (same size, other bytes) makes
its net unavailable once the verifier has hashed it, before any request has loaded it.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from app.inference import heatmaps
from app.inference.decode_budget import decode_budget
from app.inference.errors import ModelUnavailable, UnknownModel
from app.inference.images import decode, preprocess
from app.inference.integrity import (
    FileIdentity,
    Verifier,
    file_identity,
    hash_file,
    mismatch_reason,
)
from app.inference.labels import labels
from app.inference.manifest import Manifest, ManifestError, ModelFile, read_manifest
from app.inference.providers import CPU, CUDA, ProviderChoice, choose_provider
from app.inference.results import (
    FeatureMapsResult,
    ModelStatus,
    NetIntegrity,
    PredictResult,
    ServiceStatus,
    Timings,
    TopClass,
)
from app.inference.scheduler import Answer, Arrival, BatchKey, BatchScheduler, Job, Limits
from app.inference.sessions import (
    BrokenModel,
    FileStamp,
    Loaded,
    OrtSession,
    SessionCache,
    SessionFactory,
    SessionKey,
    batch_capacity,
    file_stamp,
    ort_session,
    session_options,
)
from app.settings import Settings
from app.specs import Volume, builtin_registry

TOP_K = 5
BUILD_LOCK = ".build.lock"  # held by `convatlas models build` while it writes

Which = Literal["model", "features"]


@dataclass(frozen=True)
class Decoded:
    image: Image.Image
    started: float  # when the request's work began: the origin of its total time
    decode_ms: float


@dataclass(frozen=True)
class Queued:
    """A request's image in the scheduler's queue, with what it took to get there."""

    job: Job
    decoded: Decoded
    preprocess_ms: float


class InferenceService:
    def __init__(
        self,
        settings: Settings,
        known_ids: Sequence[str] | None = None,
        *,
        open_session: SessionFactory = ort_session,
        verifier: Verifier | None = None,
    ) -> None:
        """``open_session`` opens a model file (onnxruntime by default); tests pass a wrapper
        to make runs stall, raise or return NaN. ``verifier`` hashes the model files in the
        background (by default one over the process's shared digest cache); it starts now."""
        self._settings = settings
        self._budget = decode_budget(settings)
        self._root = settings.models_dir
        self._known = list(known_ids) if known_ids is not None else builtin_registry().ids()
        self._sessions = SessionCache(settings.model_cache_bytes)
        self._open_session = open_session
        self._options = session_options(settings)
        self._scheduler = BatchScheduler(_limits(settings), on_hang=self._sessions.discard)
        self._broken: dict[FileStamp, str] = {}
        self._broken_lock = threading.Lock()
        self._choice: ProviderChoice | None = None
        self._choice_lock = threading.Lock()
        self._verifier = verifier if verifier is not None else Verifier()
        self._digests = self._verifier.cache
        self._verifier.start(self._files_to_verify)

    # The provider is chosen on first use, not at import: probing CUDA takes a moment.
    def provider(self) -> ProviderChoice:
        with self._choice_lock:
            if self._choice is None:
                self._choice = choose_provider(self._settings.providers)
            return self._choice

    def predict(self, model_id: str, image_bytes: bytes) -> PredictResult:
        """The top-5 classes of one image for one net."""
        manifest = self.manifest(model_id)
        with self._scheduler.arriving(self._batch_key(manifest, "model")) as arrival:
            decoded = self._decode(image_bytes)
            queued = self._enqueue(arrival, manifest, "model", decoded)
        return self._prediction(manifest, queued)

    def predict_many(self, model_ids: Sequence[str], image_bytes: bytes) -> list[PredictResult]:
        """The same image through several nets, decoded once; results in the order asked."""
        manifests = [self.manifest(model_id) for model_id in model_ids]
        with ExitStack() as stack:
            arrivals = [
                stack.enter_context(self._scheduler.arriving(self._batch_key(m, "model")))
                for m in manifests
            ]
            decoded = self._decode(image_bytes)
            queued = [
                self._enqueue(arrival, manifest, "model", decoded)
                for arrival, manifest in zip(arrivals, manifests, strict=True)
            ]
        pairs = zip(manifests, queued, strict=True)
        return [self._prediction(manifest, each) for manifest, each in pairs]

    def feature_maps(self, model_id: str, image_bytes: bytes) -> FeatureMapsResult:
        """Each conv and pool layer's output volume and its most active channels as heatmaps."""
        manifest = self.manifest(model_id)
        with self._scheduler.arriving(self._batch_key(manifest, "features")) as arrival:
            decoded = self._decode(image_bytes)
            queued = self._enqueue(arrival, manifest, "features", decoded)
        answer = self._scheduler.result(queued.job)
        k, side = self._settings.feature_maps_top_k, self._settings.feature_map_side
        layers = [
            heatmaps.layer_maps(volume[0], output, k, side)
            for volume, output in zip(answer.outputs, manifest.features.outputs, strict=True)
        ]
        volume = Volume(
            height=manifest.input.height,
            width=manifest.input.width,
            channels=manifest.input.channels,
        )
        return FeatureMapsResult(
            id=manifest.id,
            provider=answer.provider,
            weights=manifest.weights.kind,
            input=volume,
            layers=layers,
            timings_ms=_timings(queued, answer),
        )

    def status(self) -> ServiceStatus:
        """The provider, the queue and each net's state; a file not verified yet is asked for
        (in the background: status() never hashes)."""
        choice = self.provider()
        loaded = {key.path: entry for key, entry in self._sessions.loaded().items()}
        nets = [self._net_status(model_id, loaded) for model_id in self._known]
        return ServiceStatus(
            requested_provider=choice.requested,
            provider=choice.provider,
            provider_reason=choice.reason,
            models_dir=str(self._root),
            build_running=build_running(self._root),
            queue=self._scheduler.status(),
            models=[model for model, _ in nets],
            integrity=[integrity for _, integrity in nets],
        )

    def close(self) -> None:
        """Stop the background verification (within one chunk; its file is closed), then the
        inference worker after its current run; queued requests get Overloaded."""
        self._verifier.close()
        self._scheduler.close()

    def manifest(self, model_id: str) -> Manifest:
        """The manifest of a built net whose files are not known to be broken; UnknownModel or
        ModelUnavailable otherwise."""
        manifest = self._built(model_id)
        if (problem := self._known_broken(manifest)) is not None:
            raise ModelUnavailable(model_id, self._unavailable_reason(model_id, problem))
        return manifest

    def _built(self, model_id: str) -> Manifest:
        """The manifest of a built net (its files of the sizes it records), broken or not."""
        if model_id not in self._known:
            raise UnknownModel(model_id, self._known)
        try:
            manifest = read_manifest(self._root / model_id)
        except ManifestError as error:
            raise ModelUnavailable(model_id, self._unavailable_reason(model_id, error)) from None
        if manifest.id != model_id:
            raise ModelUnavailable(model_id, f"the folder holds the manifest of {manifest.id}")
        return manifest

    def _prediction(self, manifest: Manifest, queued: Queued) -> PredictResult:
        answer = self._scheduler.result(queued.job)
        return PredictResult(
            id=manifest.id,
            top5=top_classes(answer.outputs[0][0], manifest),
            provider=answer.provider,
            weights=manifest.weights.kind,
            timings_ms=_timings(queued, answer),
        )

    def _decode(self, image_bytes: bytes) -> Decoded:
        started = time.perf_counter()
        settings = self._settings
        image = decode(
            image_bytes, settings.max_image_pixels, settings.max_image_aspect, self._budget
        )
        return Decoded(image, started, (time.perf_counter() - started) * 1000)

    def _enqueue(
        self, arrival: Arrival, manifest: Manifest, which: Which, decoded: Decoded
    ) -> Queued:
        """Preprocess for this net and join the queue; the worker opens the session."""
        started = time.perf_counter()
        batch = preprocess(decoded.image, manifest.preprocess, self._settings.max_image_pixels)
        preprocess_ms = (time.perf_counter() - started) * 1000
        job = arrival.submit(lambda: self._session(manifest, which), batch)
        return Queued(job, decoded, preprocess_ms)

    def _batch_key(self, manifest: Manifest, which: Which) -> BatchKey:
        key = self._session_key(manifest, _file(manifest, which))
        if which == "model":
            return BatchKey(manifest.id, key, manifest.input.name, (manifest.output.name,))
        outputs = tuple(output.output for output in manifest.features.outputs)
        # One image a run: every conv and pool output is about 60 MB an image for a VGG, and
        # conv layers gain little from batching on a CPU.
        return BatchKey(manifest.id, key, manifest.input.name, outputs, batch_max=1)

    def _session_key(self, manifest: Manifest, file: ModelFile) -> SessionKey:
        return SessionKey(self._root / manifest.id / file.path, file.sha256)

    def _session(self, manifest: Manifest, which: Which) -> Loaded:
        """The net's session for ``which`` file, loaded and checked on first use; a file known
        to be broken is not loaded again."""
        file = _file(manifest, which)
        key = self._session_key(manifest, file)
        stamp = file_stamp(key)
        if stamp is not None and (problem := self._file_problem(stamp, file)) is not None:
            raise ModelUnavailable(manifest.id, self._unavailable_reason(manifest.id, problem))
        try:
            return self._sessions.get(key, file.bytes, lambda: self._load(manifest, which, key))
        except BrokenModel as error:
            if stamp is not None:
                self._remember_broken(stamp, error.reason)
            reason = self._unavailable_reason(manifest.id, error.reason)
            raise ModelUnavailable(manifest.id, reason) from None
        except OSError as error:  # the file went away meanwhile: a build is replacing it
            raise ModelUnavailable(manifest.id, f"cannot read {file.path}: {error}") from None

    def _load(self, manifest: Manifest, which: Which, key: SessionKey) -> Loaded:
        """A session that matches its manifest, on the chosen provider; BrokenModel otherwise.
        One that loads on CUDA but cannot run there is reloaded on the CPU."""
        file = _file(manifest, which)
        digest = hash_file(key.path)  # even when verified: the file may have changed since
        self._digests.record(digest)
        if digest.sha256 != file.sha256:
            raise BrokenModel(mismatch_reason(file.path, file.sha256, digest.sha256))
        session = self._open(key.path, self.provider().session_providers, file)
        outputs = self._batch_key(manifest, which).outputs
        try:
            max_batch = batch_capacity(session, manifest.input, outputs)
        except BrokenModel as error:
            raise BrokenModel(f"{file.path} {error.reason}") from None
        provider = session.get_providers()[0]
        if provider == CUDA:
            problem = _warm_up(session)
            if problem is not None:
                self._fall_back_to_cpu(f"a model failed on CUDA: {problem}")
                session, provider = self._open(key.path, [CPU], file), CPU
        return Loaded(session, provider, file.bytes, max_batch)

    def _open(self, path: Path, providers: list[str], file: ModelFile) -> OrtSession:
        try:
            return self._open_session(path, providers, self._options)
        except Exception as error:  # ORT's errors have no common base: a file it cannot load
            reason = f"onnxruntime cannot load {file.path}: {str(error).splitlines()[0]}"
            raise BrokenModel(reason) from error

    def _remember_broken(self, stamp: FileStamp, reason: str) -> None:
        with self._broken_lock:
            older = [known for known in self._broken if known.key.path == stamp.key.path]
            for known in older:  # one version per file is enough: a rebuild replaces it
                del self._broken[known]
            self._broken[stamp] = reason

    def _known_broken(self, manifest: Manifest) -> str | None:
        """Why one of the net's files is broken, if a load or the verifier has found out."""
        for file in (manifest.model, manifest.features):
            stamp = file_stamp(self._session_key(manifest, file))
            if stamp is not None and (problem := self._file_problem(stamp, file)) is not None:
                return problem
        return None

    def _file_problem(self, stamp: FileStamp, file: ModelFile) -> str | None:
        """Why this version of a file cannot be served, if known: its sha256 (hashed by the
        verifier or a load) is not the manifest's, or a load found it broken."""
        sha256 = self._digests.get(stamp.identity)
        if sha256 is not None and sha256 != file.sha256:
            return mismatch_reason(file.path, file.sha256, sha256)
        return self._broken_reason(stamp)

    def _broken_reason(self, stamp: FileStamp) -> str | None:
        with self._broken_lock:
            return self._broken.get(stamp) if self._broken else None

    def _files_to_verify(self) -> list[FileIdentity]:
        """Every built net's files, smallest net first (run by the verifier's thread)."""
        nets: list[tuple[int, list[FileIdentity]]] = []
        for model_id in self._known:
            try:
                manifest = self._built(model_id)
            except ModelUnavailable:
                continue  # nothing finished to check; status() asks once there is
            files = [self._root / model_id / f.path for f in (manifest.model, manifest.features)]
            identities = [i for i in map(file_identity, files) if i is not None]
            nets.append((sum(i.size for i in identities), identities))
        nets.sort(key=lambda net: net[0])
        return [identity for _, identities in nets for identity in identities]

    def _integrity(self, manifest: Manifest) -> NetIntegrity:
        """The net's files against their manifest's sha256, as far as known; a file not hashed
        yet is asked for."""
        verifying: list[str] = []
        unchecked: list[str] = []
        for file in (manifest.model, manifest.features):
            identity = file_identity(self._root / manifest.id / file.path)
            if identity is None:  # gone since the manifest was read: a build is replacing it
                unchecked.append(f"{file.path} is missing")
                continue
            check = self._verifier.check(identity)
            if check.sha256 is not None and check.sha256 != file.sha256:
                reason = mismatch_reason(file.path, file.sha256, check.sha256)
                return NetIntegrity(id=manifest.id, state="mismatch", detail=reason)
            if check.state == "verifying":
                verifying.append(file.path)
            elif check.state == "unchecked":
                unchecked.append(check.detail or f"{file.path} is not checked")
        if verifying:
            detail = f"checking the sha256 of {' and '.join(verifying)} in the background"
            return NetIntegrity(id=manifest.id, state="verifying", detail=detail)
        if unchecked:
            return NetIntegrity(id=manifest.id, state="unchecked", detail="; ".join(unchecked))
        return NetIntegrity(id=manifest.id, state="verified", detail=None)

    def _fall_back_to_cpu(self, reason: str) -> None:
        with self._choice_lock:
            requested = self._settings.providers
            self._choice = ProviderChoice(requested, CPU, f"running on the CPU: {reason}")

    def _net_status(
        self, model_id: str, loaded: dict[Path, Loaded]
    ) -> tuple[ModelStatus, NetIntegrity]:
        """Whether the net can predict (and why not), and how far its files are verified.
        A net whose files are still being verified is available: its load checks them."""
        try:
            manifest = self._built(model_id)
        except ModelUnavailable as error:
            return _unavailable(model_id, error.reason), NetIntegrity(
                id=model_id, state="unchecked", detail=None
            )
        integrity = self._integrity(manifest)
        if (problem := self._known_broken(manifest)) is not None:
            reason = self._unavailable_reason(model_id, problem)
            return _unavailable(model_id, reason), integrity
        return self._available(manifest, loaded), integrity

    def _available(self, manifest: Manifest, loaded: dict[Path, Loaded]) -> ModelStatus:
        model_id = manifest.id
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

    def _unavailable_reason(self, model_id: str, problem: ManifestError | str) -> str:
        if build_running(self._root):
            return f"{problem}; a build is running now"
        return f"{problem}; run `convatlas models build {model_id}`"


def _limits(settings: Settings) -> Limits:
    return Limits(
        batch_max=settings.batch_max,
        batch_wait_s=settings.batch_wait_ms / 1000,
        queue_max=settings.queue_max,
        queue_deadline_s=settings.queue_deadline_s,
        inference_deadline_s=settings.inference_deadline_s,
    )


def _unavailable(model_id: str, reason: str) -> ModelStatus:
    return ModelStatus(
        id=model_id,
        available=False,
        loaded=False,
        provider=None,
        weights=None,
        weights_detail=None,
        reason=reason,
    )


def _file(manifest: Manifest, which: Which) -> ModelFile:
    return manifest.model if which == "model" else manifest.features


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


def _warm_up(session: OrtSession) -> str | None:
    """Run zeros through a new CUDA session: it may load yet fail to run (an unsupported GPU)."""
    spec = session.get_inputs()[0]
    shape = [dim if isinstance(dim, int) else 1 for dim in spec.shape]
    try:
        session.run(None, {spec.name: np.zeros(shape, dtype=np.float32)})
    except Exception as error:  # any ORT failure: its first line says why
        return str(error).splitlines()[0]
    return None


def _timings(queued: Queued, answer: Answer) -> Timings:
    decoded = queued.decoded
    return Timings(
        decode=round(decoded.decode_ms, 3),
        preprocess=round(queued.preprocess_ms, 3),
        queue=round(answer.queue_ms, 3),
        inference=round(answer.run_ms, 3),
        total=round((time.perf_counter() - decoded.started) * 1000, 3),
    )
