"""The cluster's directory: one detached actor on the head node, named in the Settings' namespace.

It holds the bytes of every deployed model file, keyed by sha256, so a replica starting on any
node (after a crash too, long after `convatlas cluster deploy` has exited) fetches its net
through Ray's object store: no node needs the model repository on its disk. It also keeps what
each replica last reported (node, provider, queue depth), which `convatlas cluster status` and
/readyz read; a report older than REPORT_STALE_S is a replica that has gone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from app.inference.results import WeightsKind

DIRECTORY_NAME = "convatlas-directory"
REPORT_EVERY_S = 1.0
REPORT_STALE_S = 4 * REPORT_EVERY_S
HEAD_RESOURCE = "node:__internal_head__"


@dataclass(frozen=True)
class ReplicaReport:
    """One replica's state, as it last reported it."""

    net: str
    replica: str  # Serve's replica id
    actor_name: str  # its actor (namespace "serve"): what a test or an operator kills
    node_id: str
    node_ip: str
    provider: str  # the session's ONNX Runtime provider
    provider_reason: str
    weights: WeightsKind  # from the manifest
    sha256: str  # of the model file it runs, checked when it loaded
    queue: int  # requests in this replica now: waiting for a batch or running
    answered: int  # requests answered since it started
    reported_at: float  # time.time() on the replica


class Directory:
    """The actor's body (ray.remote below): plain methods, each called one at a time."""

    def __init__(self) -> None:
        self._files: dict[str, bytes] = {}
        self._reports: dict[str, ReplicaReport] = {}

    def has(self, sha256: str) -> bool:
        return sha256 in self._files

    def put(self, sha256: str, data: bytes) -> None:
        self._files[sha256] = data

    def fetch(self, sha256: str) -> bytes:
        """The file's bytes (through the object store); KeyError when never uploaded."""
        return self._files[sha256]

    def keep_only(self, sha256s: list[str]) -> None:
        """Forget the files no deployment runs any more (after a redeploy)."""
        self._files = {key: data for key, data in self._files.items() if key in sha256s}

    def report(self, report: ReplicaReport) -> None:
        self._reports[report.replica] = report

    def reports(self) -> list[ReplicaReport]:
        """The replicas heard from lately, by net and replica id."""
        fresh = time.time() - REPORT_STALE_S
        self._reports = {key: r for key, r in self._reports.items() if r.reported_at >= fresh}
        return sorted(self._reports.values(), key=lambda r: (r.net, r.replica))


RemoteDirectory = ray.remote(num_cpus=0, max_restarts=0)(Directory)


def head_node_id() -> str:
    """The head node's id: the directory lives there, with the cluster's own state."""
    for node in ray.nodes():  # type: ignore[no-untyped-call]
        if node["Alive"] and HEAD_RESOURCE in node["Resources"]:
            return str(node["NodeID"])
    raise RuntimeError("the Ray cluster reports no live head node")


def directory(namespace: str) -> Any:
    """The directory's actor handle, started on the head node if it is not running yet."""
    strategy = NodeAffinitySchedulingStrategy(node_id=head_node_id(), soft=False)
    return RemoteDirectory.options(
        name=DIRECTORY_NAME,
        namespace=namespace,
        lifetime="detached",
        get_if_exists=True,
        scheduling_strategy=strategy,
    ).remote()


def existing_directory(namespace: str) -> Any:
    """The running directory's handle; ValueError when none runs (nothing deployed)."""
    return ray.get_actor(DIRECTORY_NAME, namespace=namespace)
