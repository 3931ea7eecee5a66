"""The model store: the nets' manifests, their files' integrity, the record of broken files,
and the ONNX Runtime sessions, loaded on demand.

A model file is checked when it loads: its sha256 against the manifest, its input and outputs
against the manifest's. A file that fails is remembered as broken, by its identity on disk, so
the net reports the reason without reloading it on every request, until a rebuild renames a new
folder into place. Besides, every built file's sha256 is verified in the background from the
start (integrity.py): a file damaged in place makes its net unavailable once the verifier has
hashed it, before any request has loaded it.

Loading is not queueing: a request waits for its net's session with ``ready`` (within its own
load deadline, ModelLoading past it) before it joins the scheduler's queue. Loads run in one
loader thread, one at a time, so only the cache's sessions and the load in progress hold memory.
"""

from __future__ import annotations

import copy
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Literal

import numpy as np

from app.inference.errors import (
    InferenceError,
    InferenceFailed,
    ModelLoading,
    ModelUnavailable,
    UnknownModel,
)
from app.inference.integrity import (
    FileIdentity,
    Verifier,
    file_identity,
    hash_file,
    mismatch_reason,
)
from app.inference.providers import CPU, CUDA, ProviderChoice, choose_provider
from app.inference.results import ModelStatus, NetIntegrity
from app.inference.scheduler import BatchKey
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
from app.repository.lock import build_running
from app.repository.manifest import Manifest, ManifestError, ModelFile, read_manifest
from app.settings import Settings

Which = Literal["model", "features"]


class ModelStore:
    def __init__(
        self,
        settings: Settings,
        known_ids: list[str],
        *,
        open_session: SessionFactory = ort_session,
        verifier: Verifier | None = None,
    ) -> None:
        """``open_session`` opens a model file (onnxruntime by default; tests wrap it);
        ``verifier`` hashes the model files in the background; it starts now."""
        self._settings = settings
        self.root = settings.models_dir
        self.known = known_ids
        self._sessions = SessionCache(settings.model_cache_bytes)
        self._open_session = open_session
        self._options = session_options(settings)
        self._broken: dict[FileStamp, str] = {}
        self._broken_lock = threading.Lock()
        self._choice: ProviderChoice | None = None
        self._choice_lock = threading.Lock()
        self._requested: dict[SessionKey, tuple[Manifest, Which]] = {}
        self._loads: dict[SessionKey, Future[Loaded]] = {}
        self._loads_lock = threading.RLock()  # a done callback may run inside it
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader")
        self._verifier = verifier if verifier is not None else Verifier()
        self._digests = self._verifier.cache
        self._verifier.start(self._files_to_verify)

    # The provider is chosen on first use, not at import: probing CUDA takes a moment.
    def provider(self) -> ProviderChoice:
        with self._choice_lock:
            if self._choice is None:
                self._choice = choose_provider(self._settings.providers)
            return self._choice

    def manifest(self, model_id: str) -> Manifest:
        """The manifest of a built net whose files are not known to be broken; UnknownModel or
        ModelUnavailable otherwise."""
        manifest = self._built(model_id)
        if (problem := self._known_broken(manifest)) is not None:
            raise ModelUnavailable(model_id, self._unavailable_reason(model_id, problem))
        return manifest

    def batch_key(self, manifest: Manifest, which: Which) -> BatchKey:
        """The scheduler's key for runs of ``which`` file of the net."""
        key = self._session_key(manifest, _file(manifest, which))
        with self._loads_lock:
            self._requested[key] = (manifest, which)
        if which == "model":
            return BatchKey(manifest.id, key, manifest.input.name, (manifest.output.name,))
        outputs = tuple(output.output for output in manifest.features.outputs)
        # One image a run: every conv and pool output is about 60 MB an image for a VGG, and
        # conv layers gain little from batching on a CPU.
        return BatchKey(manifest.id, key, manifest.input.name, outputs, 1, which)

    def ready(self, key: BatchKey, timeout_s: float) -> None:
        """Wait, at most ``timeout_s``, until ``key``'s session is loaded (starting the load
        if need be); ModelLoading when it is still loading then, ModelUnavailable when it
        cannot load. The load goes on after a timeout: a retry finds it done."""
        if key.session in self._sessions.loaded():
            return
        with self._loads_lock:
            load = self._loads.get(key.session)
            if load is None:
                load = self._loader.submit(self.session_for, key)
                self._loads[key.session] = load
                load.add_done_callback(lambda done: self._forget_load(key.session, done))
        try:
            load.result(timeout=timeout_s)
        except FutureTimeout:
            reason = f"its model is still loading after {timeout_s:g} s"
            raise ModelLoading(key.model_id, reason, timeout_s) from None
        except InferenceError as error:  # one copy per waiting request
            raise copy.copy(error) from None
        except Exception as error:  # an unexpected failure to load: the request gets a 500
            reason = f"loading the model failed: {str(error).strip() or type(error).__name__}"
            raise InferenceFailed(key.model_id, reason.splitlines()[0]) from error

    def session_for(self, key: BatchKey) -> Loaded:
        """``key``'s session, loaded and checked on first use; a file known to be broken is
        not loaded again."""
        with self._loads_lock:
            manifest, which = self._requested[key.session]
        file = _file(manifest, which)
        stamp = file_stamp(key.session)
        if stamp is not None and (problem := self._file_problem(stamp, file)) is not None:
            raise ModelUnavailable(manifest.id, self._unavailable_reason(manifest.id, problem))
        try:
            return self._sessions.get(
                key.session, file.bytes, lambda: self._load(manifest, key, file)
            )
        except BrokenModel as error:
            if stamp is not None:
                self._remember_broken(stamp, error.reason)
            reason = self._unavailable_reason(manifest.id, error.reason)
            raise ModelUnavailable(manifest.id, reason) from None
        except OSError as error:  # the file went away meanwhile: a build is replacing it
            raise ModelUnavailable(manifest.id, f"cannot read {file.path}: {error}") from None

    def discard(self, key: SessionKey, loaded: Loaded) -> None:
        self._sessions.discard(key, loaded)

    def loading(self) -> set[SessionKey]:
        with self._loads_lock:
            return set(self._loads)

    def net_status(self, model_id: str) -> tuple[ModelStatus, NetIntegrity]:
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
        return self._available(manifest), integrity

    def build_running(self) -> bool:
        return build_running(self.root)

    def close(self) -> None:
        """Stop the background verification and the loader (a load in progress finishes)."""
        self._verifier.close()
        self._loader.shutdown(wait=False, cancel_futures=True)

    def _forget_load(self, key: SessionKey, done: Future[Loaded]) -> None:
        with self._loads_lock:
            if self._loads.get(key) is done:
                del self._loads[key]

    def _built(self, model_id: str) -> Manifest:
        """The manifest of a built net (its files of the sizes it records), broken or not."""
        if model_id not in self.known:
            raise UnknownModel(model_id, self.known)
        try:
            manifest = read_manifest(self.root / model_id)
        except ManifestError as error:
            raise ModelUnavailable(model_id, self._unavailable_reason(model_id, error)) from None
        if manifest.id != model_id:
            raise ModelUnavailable(model_id, f"the folder holds the manifest of {manifest.id}")
        return manifest

    def _session_key(self, manifest: Manifest, file: ModelFile) -> SessionKey:
        return SessionKey(self.root / manifest.id / file.path, file.sha256)

    def _load(self, manifest: Manifest, key: BatchKey, file: ModelFile) -> Loaded:
        """A session that matches its manifest, on the chosen provider; BrokenModel otherwise.
        One that loads on CUDA but cannot run there is reloaded on the CPU."""
        path = key.session.path
        digest = hash_file(path)  # even when verified: the file may have changed since
        self._digests.record(digest)
        if digest.sha256 != file.sha256:
            raise BrokenModel(mismatch_reason(file.path, file.sha256, digest.sha256))
        session = self._open(path, self.provider().session_providers, file)
        try:
            max_batch = batch_capacity(session, manifest.input, key.outputs)
        except BrokenModel as error:
            raise BrokenModel(f"{file.path} {error.reason}") from None
        provider = session.get_providers()[0]
        if provider == CUDA:
            problem = _warm_up(session)
            if problem is not None:
                self._fall_back_to_cpu(f"a model failed on CUDA: {problem}")
                session, provider = self._open(path, [CPU], file), CPU
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
        for file in manifest.files():
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
        with self._broken_lock:
            return self._broken.get(stamp) if self._broken else None

    def _files_to_verify(self) -> list[FileIdentity]:
        """Every built net's files, smallest net first (run by the verifier's thread)."""
        nets: list[tuple[int, list[FileIdentity]]] = []
        for model_id in self.known:
            try:
                manifest = self._built(model_id)
            except ModelUnavailable:
                continue  # nothing finished to check; status() asks once there is
            files = [self.root / model_id / f.path for f in manifest.files()]
            identities = [i for i in map(file_identity, files) if i is not None]
            nets.append((sum(i.size for i in identities), identities))
        nets.sort(key=lambda net: net[0])
        return [identity for _, identities in nets for identity in identities]

    def _integrity(self, manifest: Manifest) -> NetIntegrity:
        """The net's files against their manifest's sha256, as far as known; a file not hashed
        yet is asked for."""
        verifying: list[str] = []
        unchecked: list[str] = []
        for file in manifest.files():
            identity = file_identity(self.root / manifest.id / file.path)
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

    def _available(self, manifest: Manifest) -> ModelStatus:
        loaded = {key.path: entry for key, entry in self._sessions.loaded().items()}
        session = loaded.get(self.root / manifest.id / manifest.model.path)
        return ModelStatus(
            id=manifest.id,
            available=True,
            loaded=session is not None,
            provider=session.provider if session else None,
            weights=manifest.weights.kind,
            weights_detail=manifest.weights.describe(),
            reason=None,
        )

    def _unavailable_reason(self, model_id: str, problem: ManifestError | str) -> str:
        if build_running(self.root):
            return f"{problem}; a build is running now"
        return f"{problem}; run `convatlas models build {model_id}`"


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


def _warm_up(session: OrtSession) -> str | None:
    """Run zeros through a new CUDA session: it may load yet fail to run (an unsupported GPU)."""
    spec = session.get_inputs()[0]
    shape = [dim if isinstance(dim, int) else 1 for dim in spec.shape]
    try:
        session.run(None, {spec.name: np.zeros(shape, dtype=np.float32)})
    except Exception as error:  # any ORT failure: its first line says why
        return str(error).splitlines()[0]
    return None
