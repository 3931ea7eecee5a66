"""`convatlas cluster deploy` and `convatlas cluster status`.

A deploy reads each net's manifest from the model repository, uploads its model files to the
directory (only those the directory lacks, by sha256), and runs one Serve application: one
deployment per net (replica.py) behind a small ingress, the catalog, that hands the web tier
the deployed nets' manifests. So a web process needs neither the model repository nor a disk
shared with the cluster: what it must know of a net (preprocessing, labels, weights) comes from
the catalog, the tensors go to the replicas.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray
from ray import serve

from app.cluster.directory import ReplicaReport, directory, existing_directory
from app.cluster.replica import deployment
from app.inference.results import ClusterStatus, NetDeployment, ReplicaState
from app.repository.manifest import Manifest, read_manifest
from app.settings import Settings

CATALOG = "catalog"  # the application's ingress deployment
PROBE_TIMEOUT_S = 3.0
SERVE_NAMESPACE = "serve"  # where Serve's controller and replicas live, whatever the driver's


class Catalog:
    """The ingress: which nets this application serves, with their manifests."""

    def __init__(self, manifests: dict[str, Manifest], *nets: Any) -> None:
        self._manifests = manifests
        self._nets = nets  # the nets' handles: binding them makes them part of the application

    def manifests(self) -> dict[str, Manifest]:
        return self._manifests


def connect(settings: Settings) -> None:
    """Join the cluster at Settings.ray_address ("auto" when unset) as a driver, once.
    ConnectionError at once when nothing listens at a host:port address: ray.init itself would
    retry for minutes."""
    if ray.is_initialized():
        return
    address = settings.ray_address or "auto"
    if (problem := unreachable(address)) is not None:
        raise ConnectionError(f"cannot reach the Ray cluster at {address}: {problem}")
    ray.init(
        address=settings.ray_address or "auto",
        namespace=settings.ray_namespace,
        log_to_driver=False,  # replicas log on their nodes, not into the web tier's output
        logging_level=logging.WARNING,
    )


def unreachable(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why nothing answers at a host:port address (a TCP connection to the head's GCS port),
    or None; "auto" and other forms are left to ray.init."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return None
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        return error.strerror or type(error).__name__
    return None


def deploy(settings: Settings, root: Path, ids: Sequence[str]) -> dict[str, Manifest]:
    """Upload the nets' files and (re)deploy the application; returns once every deployment
    runs. A net already deployed and unchanged keeps its replicas."""
    manifests = {net_id: read_manifest(root / net_id) for net_id in ids}
    connect(settings)
    store = directory(settings.ray_namespace)
    for net_id, manifest in manifests.items():
        for file in (manifest.model, manifest.features):
            if not ray.get(store.has.remote(file.sha256)):
                data = (root / net_id / file.path).read_bytes()
                ray.get(store.put.remote(file.sha256, data))
    serve.start(proxy_location="Disabled")  # the web tier calls deployments by handle
    nets = [deployment(manifest, settings) for manifest in manifests.values()]
    catalog = serve.deployment(name=CATALOG, num_replicas=1, ray_actor_options={"num_cpus": 0})(
        Catalog
    )
    serve.run(catalog.bind(manifests, *nets), name=settings.ray_app_name, route_prefix=None)
    kept = [f.sha256 for m in manifests.values() for f in (m.model, m.features)]
    ray.get(store.keep_only.remote(kept))
    return manifests


def cluster_state(settings: Settings) -> ClusterStatus:
    """What `convatlas cluster status` prints and /readyz shows (connects when needed)."""
    connect(settings)
    app_name = settings.ray_app_name
    nodes = len([node for node in ray.nodes() if node["Alive"]])  # type: ignore[no-untyped-call]
    application = serve.status().applications.get(app_name)
    address = settings.ray_address or "auto"
    if application is None:
        return ClusterStatus(
            address=address,
            application=app_name,
            reachable=True,
            status="NOT_STARTED",
            message=f"nothing deployed: run `convatlas cluster deploy` against {address}",
            nodes_alive=nodes,
            nets=[],
        )
    reports = _reports(settings)
    nets = [
        _net(name, status, reports)
        for name, status in sorted(application.deployments.items())
        if name != CATALOG
    ]
    return ClusterStatus(
        address=address,
        application=app_name,
        reachable=True,
        status=_name(application.status),
        message=application.message,
        nodes_alive=nodes,
        nets=nets,
    )


def _reports(settings: Settings) -> list[ReplicaReport]:
    try:
        store = existing_directory(settings.ray_namespace)
    except ValueError:  # no directory: nothing was deployed, or the head restarted since
        return []
    reports: list[ReplicaReport] = ray.get(store.reports.remote())
    # A replica that died (its node too) may have reported a moment ago: only live actors count.
    alive = {
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == SERVE_NAMESPACE
    }
    return [report for report in reports if report.actor_name in alive]


def _net(name: str, status: Any, reports: list[ReplicaReport]) -> NetDeployment:
    states = {_name(state): int(count) for state, count in status.replica_states.items() if count}
    replicas = [
        ReplicaState(
            replica=r.replica,
            actor_name=r.actor_name,
            node_id=r.node_id,
            node_ip=r.node_ip,
            provider=r.provider,
            provider_reason=r.provider_reason,
            weights=r.weights,
            queue=r.queue,
            answered=r.answered,
        )
        for r in reports
        if r.net == name
    ]
    return NetDeployment(
        id=name,
        status=_name(status.status),
        message=status.message,
        replica_states=states,
        replicas=replicas,
    )


def status_text(state: ClusterStatus) -> str:
    """The status as a table, one row per live replica under its net."""
    lines = [
        f"application {state.application} at {state.address}: {state.status}"
        + (f" ({state.message})" if state.message else ""),
        f"nodes alive: {state.nodes_alive}",
    ]
    for net in state.nets:
        counts = ", ".join(f"{count} {name.lower()}" for name, count in net.replica_states.items())
        lines.append(f"{net.id}: {net.status}; replicas: {counts or 'none'}; queue {net.queue}")
        lines.extend(
            f"  replica {r.replica} on node {r.node_id[:12]} ({r.node_ip}): {r.provider}, "
            f"{r.weights} weights, queue {r.queue}, answered {r.answered}"
            for r in net.replicas
        )
    return "\n".join(lines) + "\n"


def _name(state: Any) -> str:
    """Serve's status enums as their names: RUNNING, not ApplicationStatus.RUNNING."""
    return str(getattr(state, "value", state))
