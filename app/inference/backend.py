"""Where inference runs, behind one interface: the service (service.py) decodes and formats, a
backend runs the nets.

The default backend is in-process ONNX Runtime (local.py: the model store and the batching
scheduler). Another backend (a cluster, say) implements the same Protocol and is handed to the
service instead; the service and the web layer do not change.

    backend.manifest("vgg16")                          -> Manifest (preprocessing, labels, weights)
    backend.run("vgg16", images, "logits", 40.0)       -> BatchOutput
    backend.status()                                   -> ServiceStatus (readiness per net)
    backend.close()

A backend refuses with the errors of errors.py (they pickle, so they cross processes):
UnknownModel, ModelUnavailable, ModelLoading, Overloaded, InferenceTimeout, InferenceFailed.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from app.inference.results import ServiceStatus
from app.repository.manifest import Manifest

# "logits": the model's class scores only. "features": the output of each conv and pool layer
# of the spec (the manifest's features.outputs, in that order), with the class scores when the
# backend computes them in the same run (the local backend's features model has none).
Outputs = Literal["logits", "features"]


@dataclass(frozen=True)
class BatchOutput:
    """What one ``run`` returns: one row per input image, in the order given."""

    logits: NDArray[np.float32] | None  # (N, classes); None only for "features", as above
    feature_maps: list[NDArray[np.float32]] | None  # each (N, C, H, W); None for "logits"
    provider: str  # the execution provider that ran it, e.g. "CPUExecutionProvider"
    queue_ms: float  # from the call to the start of the run that carried it (loading included)
    run_ms: float  # that run's wall time, shared with the other images batched with it
    # Where a cluster ran it: {"node_id", "node_ip", "replica"} (results.ServedBy); None locally.
    served_by: Mapping[str, str] | None = None


class InferenceBackend(Protocol):
    def manifest(self, model_id: str) -> Manifest:
        """The manifest of a net that can be served; UnknownModel or ModelUnavailable."""
        ...

    def run(
        self, model_id: str, images: NDArray[np.float32], outputs: Outputs, deadline_s: float
    ) -> BatchOutput:
        """Run preprocessed images, float32 (N, 3, H, W) as the manifest's input says, through
        the net. Answers or refuses within ``deadline_s`` seconds from the call (waiting for a
        model to load, queueing and running included)."""
        ...

    def status(self) -> ServiceStatus:
        """The provider and every net's readiness (available, loaded, provider, weights)."""
        ...

    def close(self) -> None:
        """Stop serving; calls still waiting are refused (Overloaded)."""
        ...


@runtime_checkable
class AnnouncesArrivals(Protocol):
    """Optional, beside InferenceBackend: a backend that batches may learn of a request while its
    upload still decodes (the service enters ``arriving`` before decoding, then calls ``run``
    in the same thread). The local backend does; a backend without it loses nothing else."""

    def arriving(self, model_id: str, outputs: Outputs) -> AbstractContextManager[None]: ...
