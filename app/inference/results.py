"""What the inference service returns: the JSON the web layer serves, field for field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.specs import Volume  # the spec's own: one schema named Volume in /openapi.json

WeightsKind = Literal["pretrained", "untrained"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timings(Frozen):
    """Milliseconds, for this request: decoding the upload, preprocessing, waiting in the
    inference queue (batching included), the ONNX Runtime run that carried it (its whole wall
    time, shared with the other images of its batch), and all of it from the start of decoding
    (loading the model on a first request included)."""

    decode: float
    preprocess: float
    queue: float
    inference: float
    total: float


class TopClass(Frozen):
    rank: int  # 1 = most probable
    index: int  # ImageNet class index, torchvision's order
    label: str
    probability: float


def _absent(value: object) -> bool:
    return value is None


class ServedBy(Frozen):
    """Which replica of the Ray Serve cluster ran the request (CONVATLAS_INFERENCE_BACKEND=ray;
    the local backend's answers have no such field)."""

    node_id: str  # the Ray node's id
    node_ip: str
    replica: str  # Serve's replica id


# Present only in the ray backend's answers: the local backend's JSON stays as it was.
ServedByField = Field(default=None, exclude_if=_absent)


class PredictResult(Frozen):
    """POST /api/predict/{id}."""

    id: str
    top5: list[TopClass]
    provider: str  # from session.get_providers(), e.g. "CPUExecutionProvider"
    weights: WeightsKind
    timings_ms: Timings
    served_by: ServedBy | None = ServedByField


class Heatmap(Frozen):
    """One channel of a layer's output as an 8-bit grayscale PNG (base64), at most N x N."""

    channel: int
    activity: float  # mean of the channel's positive part: how it was ranked
    width: int
    height: int
    png: str


class FeatureLayerMaps(Frozen):
    """A conv or pool layer: its output volume and its most active channels.

    Every heatmap of a layer shares one scale, 0 .. ``scale_max`` (negatives shown as 0), so
    brighter means more active across the strip of that layer, not only within one channel.
    """

    index: int  # the layer's index in the spec (and in the calculator's table)
    name: str
    kind: str
    output: Volume
    scale_max: float
    channels: list[Heatmap]


class FeatureMapsResult(Frozen):
    id: str
    provider: str
    weights: WeightsKind
    input: Volume
    layers: list[FeatureLayerMaps]
    timings_ms: Timings
    served_by: ServedBy | None = ServedByField


class ModelStatus(Frozen):
    id: str
    available: bool  # built and readable: predictions can be served
    loaded: bool  # an ONNX Runtime session is in memory now
    provider: str | None  # of the loaded session
    weights: WeightsKind | None
    weights_detail: str | None  # e.g. "pretrained from <url>" or why untrained
    reason: str | None  # why not available


class QueueStatus(Frozen):
    """The inference queue now: images waiting, and in the one batch in flight."""

    waiting: int
    queue_max: int
    in_flight: int
    batch_max: int


# A net's files against their manifest's sha256: all match ("verified"), one does not
# ("mismatch": the net is unavailable), not all hashed yet ("verifying": the net is available,
# its load checks the hash itself), or nothing to check or no way to ("unchecked": not built,
# unreadable, or the service has closed).
IntegrityState = Literal["verified", "verifying", "mismatch", "unchecked"]


class NetIntegrity(Frozen):
    """Whether a net's model files match the sha256 in its manifest."""

    id: str
    state: IntegrityState
    detail: str | None  # the mismatch, the files still being checked, or why unchecked


class ReplicaState(Frozen):
    """One live replica of a net on the cluster, as it last reported (within seconds)."""

    replica: str  # Serve's replica id
    actor_name: str  # its Ray actor, in namespace "serve"
    node_id: str
    node_ip: str
    provider: str  # its session's ONNX Runtime provider
    provider_reason: str
    weights: WeightsKind
    queue: int  # requests in it now: waiting for a batch or running
    answered: int  # since it started


class NetDeployment(Frozen):
    """A net's Serve deployment: Serve's status, its replicas by state, the live ones."""

    id: str
    status: str  # Serve's: HEALTHY, UPDATING, UPSCALING, DOWNSCALING, UNHEALTHY ...
    message: str
    replica_states: dict[str, int]  # e.g. {"RUNNING": 2, "STARTING": 1}
    replicas: list[ReplicaState]

    @property
    def running(self) -> int:
        return self.replica_states.get("RUNNING", 0)

    @property
    def queue(self) -> int:
        return sum(replica.queue for replica in self.replicas)


class ClusterStatus(Frozen):
    """The Serve application on the cluster, or why it cannot be reached."""

    address: str
    application: str
    reachable: bool
    status: str  # Serve's application status (RUNNING, DEPLOYING ...), or UNREACHABLE
    message: str
    nodes_alive: int
    nets: list[NetDeployment]


class ServiceStatus(Frozen):
    """For /readyz and the pages: the provider chosen, the queue and every net's state."""

    requested_provider: str
    provider: str
    provider_reason: str
    models_dir: str
    build_running: bool
    queue: QueueStatus
    models: list[ModelStatus]
    integrity: list[NetIntegrity]  # each net's files against their manifest's sha256
    # The Ray Serve cluster's state (the ray backend only).
    cluster: ClusterStatus | None = Field(default=None, exclude_if=_absent)
