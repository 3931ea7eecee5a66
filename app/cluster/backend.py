"""The `ray` inference backend (CONVATLAS_INFERENCE_BACKEND=ray): the nets run on the Ray Serve
cluster that `convatlas cluster deploy` set up.

    service = InferenceService(settings, backend=RayBackend(settings))

It implements app/inference/backend.py's InferenceBackend, so the service decodes, preprocesses
and formats exactly as with the local backend (the same top-5 and heatmaps, the same JSON), and
the answers say which node and replica ran them (``served_by``). The manifests come from the
cluster's catalog, so a web process needs no model repository. Nothing here holds state a second
web process would need: any number of them share one cluster.

Refusals: a cluster that cannot be reached, a net with no live replica, or no answer within
Settings.cluster_request_timeout_s is ClusterUnavailable (503 + Retry-After); a full queue in
front of the replicas is Overloaded (503). A request whose replica dies under it is sent once
more (inference has no side effects, so a retry is safe): Serve routes it to a live replica, or
holds it until one has started.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import ray
import ray.exceptions
from ray import serve
from ray.serve.exceptions import BackPressureError

from app.cluster.deploy import CATALOG, cluster_state, connect
from app.cluster.replica import ReplicaAnswer
from app.inference.backend import BatchOutput, Outputs
from app.inference.errors import (
    ClusterUnavailable,
    InferenceError,
    InferenceFailed,
    ModelUnavailable,
    Overloaded,
    UnknownModel,
)
from app.inference.results import (
    ClusterStatus,
    ModelStatus,
    NetIntegrity,
    QueueStatus,
    ServiceStatus,
)
from app.repository.manifest import Manifest
from app.settings import Settings
from app.specs import builtin_registry

Method = Literal["predict", "features"]
# How long the catalog's manifests are trusted before they are asked again (a redeploy shows
# within this), and how long to wait for the catalog itself.
CATALOG_TTL_S = 5.0
# How long a request waits for this process to join the cluster before it is refused, and how
# long after a failed attempt the next one starts.
CONNECT_WAIT_S = 5.0
STATUS_WAIT_S = 1.0  # status() (/readyz, every page's predict box) waits less: it only reports
RECONNECT_S = 5.0
# Errors that mean the replica went away under the request: the request may be sent again.
REPLICA_LOST = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)


class RayBackend:
    """An InferenceBackend over the Ray Serve cluster (see the module's docstring)."""

    def __init__(self, settings: Settings, known_ids: Sequence[str] | None = None) -> None:
        if not settings.ray_address:
            raise ValueError("CONVATLAS_INFERENCE_BACKEND=ray needs CONVATLAS_RAY_ADDRESS")
        self._settings = settings
        self._known = list(known_ids) if known_ids is not None else builtin_registry().ids()
        self._lock = threading.Lock()
        self._handles: dict[str, Any] = {}
        self._manifests: dict[str, Manifest] = {}
        self._manifests_at = float("-inf")
        self._joining: threading.Thread | None = None
        self._join_problem: str | None = None
        self._join_failed_at = float("-inf")

    def run(self, model_id: str, images: Any, outputs: Outputs, deadline_s: float) -> BatchOutput:
        """Each image to the net's deployment as its own request (Serve batches them with other
        clients'), all at once; their outputs stacked in order."""
        method: Method = "predict" if outputs == "logits" else "features"
        started = time.perf_counter()
        timeout = min(deadline_s, self._settings.cluster_request_timeout_s)
        deadline = time.monotonic() + timeout
        rows = [images[i : i + 1] for i in range(len(images))]
        sent = [self._send(model_id, method, row) for row in rows]
        answers = [
            self._answer(model_id, method, row, response, deadline)
            for row, response in zip(rows, sent, strict=True)
        ]
        elapsed_ms = (time.perf_counter() - started) * 1000
        run_ms = max(answer.run_ms for answer in answers)
        first = answers[0]
        stacked = [np.stack(parts) for parts in zip(*(a.outputs for a in answers), strict=True)]
        return BatchOutput(
            logits=stacked[0] if outputs == "logits" else None,
            feature_maps=stacked if outputs == "features" else None,
            provider=first.provider,
            # Serve's router, the trips to and from the replica, and waiting for its batch.
            queue_ms=max(0.0, elapsed_ms - run_ms),
            run_ms=run_ms,
            served_by={
                "node_id": first.node_id,
                "node_ip": first.node_ip,
                "replica": first.replica,
            },
        )

    def manifest(self, model_id: str) -> Manifest:
        """The deployed net's manifest, from the cluster's catalog; UnknownModel for a net that
        does not exist, ModelUnavailable for one not deployed."""
        if model_id not in self._known:
            raise UnknownModel(model_id, self._known)
        manifest = self._catalog().get(model_id)
        if manifest is None:
            reason = f"not deployed on the Ray cluster; run `convatlas cluster deploy {model_id}`"
            raise ModelUnavailable(model_id, reason)
        return manifest

    # State.

    def status(self) -> ServiceStatus:
        """ServiceStatus as the local service gives it, each net as the cluster runs it, and
        the cluster's own state; an unreachable cluster is reported, never raised."""
        cluster = self._cluster()
        deployed = {net.id: net for net in cluster.nets}
        try:
            manifests = self._catalog() if deployed else {}
        except ClusterUnavailable:
            manifests = {}
        models = [self._model_status(i, deployed.get(i), manifests.get(i)) for i in self._known]
        providers = sorted({r.provider for net in cluster.nets for r in net.replicas})
        live = sum(len(net.replicas) for net in cluster.nets)
        return ServiceStatus(
            requested_provider=self._settings.providers,
            provider=", ".join(providers) or "none",
            provider_reason=(
                f"on the Ray cluster at {cluster.address}: {live} live replicas on "
                f"{cluster.nodes_alive} nodes ({cluster.status})"
            ),
            models_dir=f"{cluster.address} (Serve application {cluster.application})",
            build_running=False,
            queue=QueueStatus(
                waiting=sum(net.queue for net in cluster.nets),
                queue_max=self._settings.queue_max,
                in_flight=0,
                batch_max=self._settings.batch_max,
            ),
            models=models,
            integrity=[_integrity(i, i in manifests) for i in self._known],
            cluster=cluster,
        )

    def close(self) -> None:
        """Nothing to stop: the replicas belong to the cluster, not to this process."""

    # The cluster.

    def _connected(self, wait_s: float = CONNECT_WAIT_S) -> None:
        """Joined to the cluster, or ClusterUnavailable within ``wait_s``: the joining runs in
        a thread of its own (ray.init may retry for minutes), and is tried again at most every
        RECONNECT_S after it failed."""
        if ray.is_initialized():
            return
        with self._lock:
            idle = self._joining is None or not self._joining.is_alive()
            if idle and time.monotonic() - self._join_failed_at >= RECONNECT_S:
                self._joining = threading.Thread(target=self._join, name="ray-join", daemon=True)
                self._joining.start()
            joining = self._joining
        if joining is not None:
            joining.join(timeout=wait_s)
        if ray.is_initialized():
            return
        address = self._settings.ray_address
        why = self._join_problem or f"still connecting to the Ray cluster at {address}"
        raise self._unavailable(why)

    def _join(self) -> None:
        try:
            connect(self._settings)
        except Exception as error:  # ray.init's failures share no base class
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            with self._lock:
                self._join_problem = first
                self._join_failed_at = time.monotonic()

    def _catalog(self) -> dict[str, Manifest]:
        with self._lock:
            if time.monotonic() - self._manifests_at < CATALOG_TTL_S:
                return self._manifests
        self._connected()
        settings = self._settings
        try:
            handle = serve.get_deployment_handle(CATALOG, settings.ray_app_name)
            manifests: dict[str, Manifest] = handle.manifests.remote().result(
                timeout_s=settings.cluster_request_timeout_s
            )
        except Exception as error:  # no application, no catalog replica, a lost connection
            reason = f"the Serve application {settings.ray_app_name!r} does not answer: {error}"
            raise self._unavailable(reason) from None
        with self._lock:
            self._manifests, self._manifests_at = manifests, time.monotonic()
        return manifests

    def _cluster(self) -> ClusterStatus:
        settings = self._settings
        try:
            self._connected(wait_s=STATUS_WAIT_S)
            return cluster_state(settings)
        except Exception as error:  # reported in the status, not raised
            return ClusterStatus(
                address=settings.ray_address or "auto",
                application=settings.ray_app_name,
                reachable=False,
                status="UNREACHABLE",
                message=str(error).splitlines()[0] if str(error) else type(error).__name__,
                nodes_alive=0,
                nets=[],
            )

    def _handle(self, model_id: str) -> Any:
        with self._lock:
            handle = self._handles.get(model_id)
            if handle is None:
                handle = serve.get_deployment_handle(model_id, self._settings.ray_app_name)
                self._handles[model_id] = handle
            return handle

    def _send(self, model_id: str, method: Method, tensor: Any) -> Any:
        return getattr(self._handle(model_id), method).remote(tensor)

    def _answer(
        self, model_id: str, method: Method, tensor: Any, response: Any, deadline: float
    ) -> ReplicaAnswer:
        """The replica's answer by ``deadline`` (time.monotonic()); the request is sent once
        more if its replica died under it."""
        for attempt in (1, 2):
            try:
                answer: ReplicaAnswer = response.result(
                    timeout_s=max(0.0, deadline - time.monotonic())
                )
                return answer
            except REPLICA_LOST as error:
                if attempt == 2:
                    reason = f"{model_id}: its replica was lost twice ({type(error).__name__})"
                    raise self._unavailable(reason) from None
                response = self._send(model_id, method, tensor)
            except TimeoutError:
                response.cancel()
                timeout = self._settings.cluster_request_timeout_s
                reason = f"{model_id}: no live replica answered within {timeout:g} s"
                raise self._unavailable(reason) from None
            except BackPressureError:
                retry = self._settings.cluster_retry_after_s
                raise Overloaded(f"{model_id}: the cluster's queue is full", retry) from None
            except ray.exceptions.RayTaskError as error:
                raise _replica_error(model_id, error) from None
        raise AssertionError("unreachable")  # the loop returns or raises

    def _unavailable(self, reason: str) -> ClusterUnavailable:
        return ClusterUnavailable(reason, self._settings.cluster_retry_after_s)

    def _model_status(self, model_id: str, net: Any, manifest: Manifest | None) -> ModelStatus:
        live = [] if net is None else net.replicas
        if net is None or manifest is None:
            reason = f"not deployed on the Ray cluster; run `convatlas cluster deploy {model_id}`"
        elif not net.running:
            reason = f"no live replica on the Ray cluster ({net.status}: {net.message})"
        else:
            reason = None
        return ModelStatus(
            id=model_id,
            available=reason is None,
            loaded=bool(live),
            provider=live[0].provider if live else None,
            weights=manifest.weights.kind if manifest else None,
            weights_detail=manifest.weights.describe() if manifest else None,
            reason=reason,
        )


def _replica_error(model_id: str, error: ray.exceptions.RayTaskError) -> InferenceError:
    """The refusal a replica raised (ModelUnavailable, InferenceFailed ...), as it was raised."""
    cause = error.cause
    if isinstance(cause, InferenceError):
        return cause
    return InferenceFailed(model_id, f"the replica failed: {str(cause).splitlines()[0]}")


def _integrity(model_id: str, deployed: bool) -> NetIntegrity:
    if not deployed:
        return NetIntegrity(id=model_id, state="unchecked", detail="not deployed on the cluster")
    detail = "each replica checks its model file against the manifest's sha256 as it loads"
    return NetIntegrity(id=model_id, state="verified", detail=detail)
