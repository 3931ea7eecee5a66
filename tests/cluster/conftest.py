"""A real two-node Ray cluster, started once for tests/cluster, and the net deployed on it.

The cluster lives as long as tests/cluster (package scope), not the whole session: idle, its
dozen processes still take about a sixth of a core, which the rest of the suite would share.

The head and the worker are separate raylets (ray.cluster_utils.Cluster) with distinct custom
resources and one logical CPU each, so a deployment of two one-CPU replicas has one replica on
each node. The model repository is the shared test one (tests/conftest.py, untrained); the
tests deploy alexnet-lecture, the smallest net (115 MB of ONNX).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine

import ray
from ray import serve
from ray.cluster_utils import Cluster

from app.cluster.backend import RayBackend
from app.cluster.deploy import deploy
from app.inference.service import InferenceService
from app.settings import Settings
from tests.cluster.support import NET, OBJECT_STORE, LocalCluster, net_state, wait_for


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[LocalCluster]:
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "resources": {"head_node": 1},
            "object_store_memory": OBJECT_STORE,
            "include_dashboard": False,
        },
    )
    worker = cluster.add_node(
        num_cpus=1, resources={"worker_node": 1}, object_store_memory=OBJECT_STORE
    )
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="convatlas", log_to_driver=False)
    yield LocalCluster(cluster, cluster.head_node.node_id, worker, worker.node_id, cluster.address)
    serve.shutdown()
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="package")
def cluster_settings(ray_cluster: LocalCluster, models_root: Path) -> Settings:
    """Two replicas of the net (one per node) that stay two: autoscaling has its own test."""
    return Settings(
        models_dir=models_root,
        providers="cpu",
        build_on_start=False,
        inference_backend="ray",
        ray_address=ray_cluster.address,
        cluster_min_replicas=2,
        cluster_max_replicas=2,
        cluster_request_timeout_s=20.0,
        cluster_retry_after_s=2,
    )


@pytest.fixture(scope="package")
def deployed(cluster_settings: Settings, models_root: Path) -> Settings:
    deploy(cluster_settings, models_root, [NET])
    return cluster_settings


@pytest.fixture
def ready(deployed: Settings) -> Settings:
    """The deployed net with both its replicas up and reporting."""
    wait_for(lambda: len(net_state(deployed).replicas) == 2, "both replicas report")
    return deployed


@pytest.fixture
def backend(ready: Settings) -> Iterator[InferenceService]:
    """A web tier's inference service with the ray backend, over the deployed net."""
    service = InferenceService(ready, backend=RayBackend(ready))
    yield service
    service.close()
