"""A net's Serve deployment: each replica holds that net's ONNX Runtime session.

The replica fetches its model file from the directory (through Ray's object store: no shared
disk) and checks it against the manifest's sha256 before opening it. It runs on CUDA when Ray
gave it a GPU and the CUDA provider really works there, else on the CPU, and says which in every
answer. Serve's own batching (`@serve.batch`, sized by Settings.batch_max and batch_wait_ms)
gathers concurrent requests into one run, as the local scheduler does in one process. The web
tier decodes and preprocesses; a replica only runs tensors, so answers stay small.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
import ray
from numpy.typing import NDArray
from ray import serve

from app.cluster.directory import REPORT_EVERY_S, ReplicaReport, existing_directory
from app.inference.errors import InferenceFailed, ModelUnavailable
from app.inference.integrity import mismatch_reason
from app.inference.providers import CPU, CUDA, ProviderChoice, choose_provider
from app.inference.sessions import BrokenModel, OrtSession, batch_capacity, session_options
from app.repository.manifest import Manifest, ModelFile
from app.settings import Settings

Tensor = NDArray[np.float32]


@dataclass(frozen=True)
class ReplicaAnswer:
    """One image's outputs from a replica, and who computed them how fast."""

    outputs: list[Tensor]  # per requested output, this image's slice (no batch dimension)
    provider: str
    node_id: str
    node_ip: str
    replica: str
    queue_ms: float  # from arriving at the replica to its batch's run starting
    run_ms: float  # the whole run that carried it (shared with its batch)
    batch: int  # images in that run


@dataclass(frozen=True)
class OpenSession:
    session: OrtSession
    provider: str
    outputs: tuple[str, ...]
    max_batch: int | None


def replica_provider(settings: Settings) -> ProviderChoice:
    """CUDA only where Ray gave this replica a GPU (num_gpus) and a probe runs on it."""
    if not ray.get_gpu_ids():
        reason = "this replica reserves no GPU (CONVATLAS_CLUSTER_REPLICA_GPUS is 0)"
        return ProviderChoice(settings.providers, CPU, reason)
    return choose_provider(settings.providers)


def checked_bytes(data: bytes, file: ModelFile) -> bytes:
    """The fetched file, if it is the one the manifest names; BrokenModel otherwise."""
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 != file.sha256:
        raise BrokenModel(mismatch_reason(file.path, file.sha256, sha256))
    return data


class NetReplica:
    """The deployment's body: `NetReplica.options(name=<net id>, ...).bind(manifest, settings)`."""

    def __init__(self, manifest: Manifest, settings: Settings) -> None:
        self._manifest = manifest
        threads = settings.intra_op_threads or max(1, round(settings.cluster_replica_cpus))
        self._settings = settings.model_copy(update={"intra_op_threads": threads})
        self._directory = existing_directory(settings.ray_namespace)
        self._choice = replica_provider(settings)
        self._model = self._open(manifest.model, (manifest.output.name,))
        self._features: OpenSession | None = None
        self._features_lock = asyncio.Lock()
        self.run_batch.set_max_batch_size(self._model_batch_limit())  # type: ignore[attr-defined]
        self.run_batch.set_batch_wait_timeout_s(settings.batch_wait_ms / 1000)  # type: ignore[attr-defined]
        context = serve.get_replica_context()
        self._replica = context.replica_id.unique_id
        self._node_id = ray.get_runtime_context().get_node_id()
        self._node_ip: str = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
        self._queue = 0
        self._answered = 0
        self._stop = threading.Event()
        threading.Thread(target=self._report_loop, name="report", daemon=True).start()

    async def predict(self, tensor: Tensor) -> ReplicaAnswer:
        """The net's output for one preprocessed image (1, C, H, W), batched with others."""
        self._queue += 1
        try:
            answer: ReplicaAnswer = await self.run_batch((tensor, time.perf_counter()))
        finally:
            self._queue -= 1
        self._answered += 1
        return answer

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def run_batch(self, items: list[tuple[Tensor, float]]) -> list[ReplicaAnswer]:
        started = time.perf_counter()
        batch = np.concatenate([tensor for tensor, _ in items])
        [scores] = await asyncio.to_thread(self._run, self._model, batch)
        run_ms = (time.perf_counter() - started) * 1000
        return [
            self._answer([scores[i]], (started - arrived) * 1000, run_ms, len(items))
            for i, (_, arrived) in enumerate(items)
        ]

    async def features(self, tensor: Tensor) -> ReplicaAnswer:
        """Every conv and pool layer's output for one image (one image a run, as locally)."""
        self._queue += 1
        try:
            arrived = time.perf_counter()
            features = await self._features_session()
            started = time.perf_counter()
            outputs = await asyncio.to_thread(self._run, features, tensor)
            run_ms = (time.perf_counter() - started) * 1000
        finally:
            self._queue -= 1
        self._answered += 1
        return self._answer([o[0] for o in outputs], (started - arrived) * 1000, run_ms, 1)

    def check_health(self) -> None:
        """Serve's health probe: the session answers (a replica that cannot run is replaced)."""
        spec = self._manifest.input
        zeros = np.zeros((1, spec.channels, spec.height, spec.width), dtype=np.float32)
        self._run(self._model, zeros)

    def __del__(self) -> None:
        stop: threading.Event | None = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()

    def _answer(
        self, outputs: list[Tensor], queue_ms: float, run_ms: float, batch: int
    ) -> ReplicaAnswer:
        return ReplicaAnswer(
            outputs=outputs,
            provider=self._model.provider,
            node_id=self._node_id,
            node_ip=self._node_ip,
            replica=self._replica,
            queue_ms=queue_ms,
            run_ms=run_ms,
            batch=batch,
        )

    def _run(self, opened: OpenSession, batch: Tensor) -> list[Tensor]:
        outputs: list[Tensor] = opened.session.run(list(opened.outputs), {self._input: batch})
        if not all(np.isfinite(output).all() for output in outputs):
            raise InferenceFailed(self._manifest.id, "the run gave NaN or infinity")
        return outputs

    @property
    def _input(self) -> str:
        return self._manifest.input.name

    def _model_batch_limit(self) -> int:
        limit = self._model.max_batch
        return self._settings.batch_max if limit is None else min(limit, self._settings.batch_max)

    async def _features_session(self) -> OpenSession:
        async with self._features_lock:  # the first features request loads it, once
            if self._features is None:
                outputs = tuple(output.output for output in self._manifest.features.outputs)
                file = self._manifest.features
                self._features = await asyncio.to_thread(self._open, file, outputs)
            return self._features

    def _open(self, file: ModelFile, outputs: tuple[str, ...]) -> OpenSession:
        """The file from the directory, checked and opened; a CUDA session that fails its first
        run is opened again on the CPU. ModelUnavailable when it cannot be served."""
        try:
            data = checked_bytes(ray.get(self._directory.fetch.remote(file.sha256)), file)
            opened = self._session(data, self._choice.session_providers, outputs)
            if opened.provider == CUDA and (problem := self._warm_up(opened)) is not None:
                reason = f"running on the CPU: a model failed on CUDA: {problem}"
                self._choice = ProviderChoice(self._choice.requested, CPU, reason)
                opened = self._session(data, [CPU], outputs)
        except BrokenModel as error:
            raise ModelUnavailable(self._manifest.id, error.reason) from None
        return opened

    def _session(self, data: bytes, providers: list[str], outputs: tuple[str, ...]) -> OpenSession:
        options = session_options(self._settings)
        try:
            session: OrtSession = ort.InferenceSession(
                data, sess_options=options, providers=providers
            )
        except Exception as error:  # ORT's errors share no base: a file it cannot load
            raise BrokenModel(f"onnxruntime cannot load it: {str(error).splitlines()[0]}") from None
        max_batch = batch_capacity(session, self._manifest.input, outputs)
        return OpenSession(session, session.get_providers()[0], outputs, max_batch)

    def _warm_up(self, opened: OpenSession) -> str | None:
        spec = self._manifest.input
        zeros = np.zeros((1, spec.channels, spec.height, spec.width), dtype=np.float32)
        try:
            opened.session.run(list(opened.outputs), {self._input: zeros})
        except Exception as error:  # any ORT failure: its first line says why
            return str(error).splitlines()[0]
        return None

    def _report_loop(self) -> None:
        actor_name = ray.get_runtime_context().get_actor_name() or ""
        while not self._stop.wait(REPORT_EVERY_S):
            self._directory.report.remote(
                ReplicaReport(
                    net=self._manifest.id,
                    replica=self._replica,
                    actor_name=actor_name,
                    node_id=self._node_id,
                    node_ip=self._node_ip,
                    provider=self._model.provider,
                    provider_reason=self._choice.reason,
                    weights=self._manifest.weights.kind,
                    sha256=self._manifest.model.sha256,
                    queue=self._queue,
                    answered=self._answered,
                    reported_at=time.time(),
                )
            )


def deployment(manifest: Manifest, settings: Settings) -> Any:
    """The net's deployment, bound: its replicas, resources and autoscaling from settings."""
    autoscaling = {
        "min_replicas": settings.cluster_min_replicas,
        "initial_replicas": max(1, settings.cluster_min_replicas),
        "max_replicas": max(settings.cluster_max_replicas, settings.cluster_min_replicas),
        "target_ongoing_requests": settings.cluster_target_ongoing_requests,
        "upscale_delay_s": settings.cluster_upscale_delay_s,
        "downscale_delay_s": settings.cluster_downscale_delay_s,
        "look_back_period_s": settings.cluster_look_back_s,
    }
    actor_options: dict[str, Any] = {"num_cpus": settings.cluster_replica_cpus}
    if settings.cluster_replica_gpus:
        actor_options["num_gpus"] = settings.cluster_replica_gpus
    net = serve.deployment(
        name=manifest.id,
        autoscaling_config=autoscaling,
        ray_actor_options=actor_options,
        # Room for a full batch on every replica, and a bounded queue in front of them.
        max_ongoing_requests=2 * settings.batch_max,
        max_queued_requests=settings.queue_max,
        health_check_period_s=5,
    )(NetReplica)
    return net.bind(manifest, settings)
