"""The nets on a real two-node Ray Serve cluster: the same answers as in-process, replicas on
both nodes, crashes of a replica and of a node survived, autoscaling both ways."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from pydantic import ValidationError
from ray import serve

from app.cluster.deploy import deploy
from app.cluster.replica import deployment
from app.inference.images import decode, preprocess
from app.inference.service import InferenceService
from app.repository.manifest import read_manifest
from app.settings import Settings
from tests.cluster.support import (
    NET,
    SETTLE_S,
    LocalCluster,
    Stream,
    kill_replica,
    local_answer,
    net_state,
    through,
    wait_for,
)


class TestParity:
    def test_the_same_logits_as_onnx_runtime_in_process(
        self, ready: Settings, photo_jpeg: bytes
    ) -> None:
        deployed = ready
        manifest = read_manifest(deployed.models_dir / NET)
        image = decode(photo_jpeg, deployed.max_image_pixels, deployed.max_image_aspect)
        tensor = preprocess(image, manifest.preprocess, deployed.max_image_pixels)
        session = ort.InferenceSession(
            str(deployed.models_dir / NET / manifest.model.path), providers=["CPUExecutionProvider"]
        )
        [local] = session.run([manifest.output.name], {manifest.input.name: tensor})
        handle = serve.get_deployment_handle(NET, deployed.ray_app_name)
        answer = handle.predict.remote(tensor).result(timeout_s=SETTLE_S)
        assert answer.provider == "CPUExecutionProvider"
        assert answer.outputs[0].shape == local[0].shape == (manifest.output.classes,)
        np.testing.assert_allclose(answer.outputs[0], local[0], rtol=1e-4, atol=1e-5)

    def test_the_same_top5_and_json_as_the_local_backend(
        self, backend: InferenceService, deployed: Settings, photo_jpeg: bytes
    ) -> None:
        expected = local_answer(deployed, lambda local: local.predict(NET, photo_jpeg))
        got = backend.predict(NET, photo_jpeg)
        assert [c.index for c in got.top5] == [c.index for c in expected.top5]
        assert [c.label for c in got.top5] == [c.label for c in expected.top5]
        for mine, theirs in zip(got.top5, expected.top5, strict=True):
            assert mine.probability == pytest.approx(theirs.probability, rel=1e-4)
        assert (got.provider, got.weights) == (expected.provider, expected.weights)
        assert got.served_by is not None
        local_json = expected.model_dump(mode="json")
        ray_json = got.model_dump(mode="json")
        assert set(ray_json) - set(local_json) == {"served_by"}  # the same JSON, plus who
        assert "served_by" not in local_json

    def test_feature_maps_match_the_local_backend(
        self, backend: InferenceService, deployed: Settings, photo_jpeg: bytes
    ) -> None:
        expected = local_answer(deployed, lambda local: local.feature_maps(NET, photo_jpeg))
        got = backend.feature_maps(NET, photo_jpeg)
        assert [layer.output for layer in got.layers] == [layer.output for layer in expected.layers]
        for mine, theirs in zip(got.layers, expected.layers, strict=True):
            assert [c.channel for c in mine.channels] == [c.channel for c in theirs.channels]
            assert mine.scale_max == pytest.approx(theirs.scale_max, rel=1e-4)


class TestPlacement:
    def test_one_replica_on_each_node(self, ready: Settings, ray_cluster: LocalCluster) -> None:
        replicas = net_state(ready).replicas
        assert sorted(r.node_id for r in replicas) == sorted(
            [ray_cluster.head_id, ray_cluster.worker_id]
        )
        assert {r.provider for r in replicas} == {"CPUExecutionProvider"}
        assert {r.weights for r in replicas} == {"untrained"}

    def test_concurrent_requests_are_answered_on_both_nodes(
        self, backend: InferenceService, ray_cluster: LocalCluster, photo_jpeg: bytes
    ) -> None:
        nodes: set[str] = set()

        def call() -> None:
            served_by = backend.predict(NET, photo_jpeg).served_by
            assert served_by is not None
            nodes.add(served_by.node_id)

        with Stream(through(call), clients=6) as stream:
            wait_for(lambda: len(nodes) == 2 or stream.answered() > 300, "answers from both")
        assert not stream.errors
        assert nodes == {ray_cluster.head_id, ray_cluster.worker_id}

    @pytest.mark.usefixtures("ready")
    def test_the_status_command_names_replicas_nodes_and_queue(
        self, ray_cluster: LocalCluster
    ) -> None:
        command = [sys.executable, "-m", "app.cli", "cluster", "status"]
        done = subprocess.run(
            [*command, "--address", ray_cluster.address],
            capture_output=True,
            text=True,
            check=True,
            timeout=SETTLE_S,
        )
        assert f"application convatlas at {ray_cluster.address}: RUNNING" in done.stdout
        assert "nodes alive: 2" in done.stdout
        assert f"{NET}: HEALTHY; replicas: 2 running; queue 0" in done.stdout
        for node_id in (ray_cluster.head_id, ray_cluster.worker_id):
            assert f"on node {node_id[:12]}" in done.stdout
        assert done.stdout.count("CPUExecutionProvider, untrained weights, queue 0") == 2


def within(settings: Settings) -> float:
    """How long a request may take: the cluster's timeout, and a retry's share of it."""
    return settings.cluster_request_timeout_s + 5


class TestFaults:
    def test_a_replica_killed_under_load(
        self, backend: InferenceService, deployed: Settings, photo_jpeg: bytes
    ) -> None:
        settings = deployed
        with Stream(through(lambda: backend.predict(NET, photo_jpeg))) as stream:
            wait_for(lambda: stream.answered() >= 5, "answers before the kill")
            killed = kill_replica(settings)
            killed_at = time.monotonic()
            wait_for(lambda: stream.answered_after(killed_at) >= 10, "answers after the kill")
            # Serve replaces the replica; the new one fetches the net and reports.
            recovery = wait_for(
                lambda: replicas_now(settings) == 2 and killed not in replica_ids(settings),
                "a new replica in place of the killed one",
            )
        stream.assert_clean(within(settings))
        print(f"replica killed: replaced in {recovery:.1f} s; {dict(stream.statuses())}")

    def test_a_worker_node_lost_under_load(
        self,
        backend: InferenceService,
        deployed: Settings,
        ray_cluster: LocalCluster,
        photo_jpeg: bytes,
    ) -> None:
        settings = deployed
        try:
            with Stream(through(lambda: backend.predict(NET, photo_jpeg))) as stream:
                wait_for(lambda: stream.answered() >= 5, "answers before the node is lost")
                ray_cluster.cluster.remove_node(ray_cluster.worker, allow_graceful=False)
                lost_at = time.monotonic()
                back = wait_for(lambda: stream.answered_after(lost_at) >= 10, "answers after")
            stream.assert_clean(within(settings))
            # Once Ray has marked the node dead (missed health checks), the status drops it.
            wait_for(
                lambda: {r.node_id for r in net_state(settings).replicas} == {ray_cluster.head_id},
                "the status lists only the head's replica",
            )
        finally:
            ray_cluster.add_worker()
        wait_for(lambda: replicas_now(settings) == 2, "two replicas again on a new worker")
        print(f"node lost: 10 answers within {back:.1f} s; {dict(stream.statuses())}")


class TestAutoscaling:
    def test_one_to_two_replicas_under_load_and_back(
        self, backend: InferenceService, deployed: Settings, models_root: Path, photo_jpeg: bytes
    ) -> None:
        scaling = deployed.model_copy(
            update={
                "cluster_min_replicas": 1,
                "cluster_max_replicas": 2,
                "cluster_target_ongoing_requests": 1.0,
                "cluster_upscale_delay_s": 0.0,
                "cluster_downscale_delay_s": 2.0,
                # Load that stopped leaves Serve's average after the look-back (30 s by default;
                # Serve wants more than its 10 s metrics interval).
                "cluster_look_back_s": 12.0,
            }
        )
        deploy(scaling, models_root, [NET])
        try:
            wait_for(lambda: net_state(scaling).running == 1, "down to the one minimum replica")
            with Stream(through(lambda: backend.predict(NET, photo_jpeg)), clients=6) as stream:
                up = wait_for(lambda: net_state(scaling).running == 2, "a second replica")
            down = wait_for(lambda: net_state(scaling).running == 1, "back to one replica")
            assert not stream.errors
        finally:
            deploy(deployed, models_root, [NET])  # two fixed replicas for the other tests
        print(f"autoscaling: up in {up:.1f} s under load, down in {down:.1f} s after")


def test_the_autoscaling_settings_reach_serve(models_root: Path) -> None:
    settings = Settings(
        models_dir=models_root,
        cluster_min_replicas=1,
        cluster_max_replicas=3,
        cluster_target_ongoing_requests=2.0,
        cluster_upscale_delay_s=4.0,
        cluster_downscale_delay_s=5.0,
        cluster_look_back_s=17.0,
    )
    bound = deployment(read_manifest(models_root / NET), settings)
    # Serve's own record of the deployment's config (it has no public getter for a bound one).
    config = bound._bound_deployment._deployment_config.autoscaling_config
    chosen = (config.min_replicas, config.max_replicas, config.target_ongoing_requests)
    delays = (config.upscale_delay_s, config.downscale_delay_s, config.look_back_period_s)
    assert (chosen, delays) == ((1, 3, 2.0), (4.0, 5.0, 17.0))
    with pytest.raises(ValidationError, match="cluster_look_back_s"):
        Settings(cluster_look_back_s=10.0)  # Serve wants more than its 10 s metrics interval


def replicas_now(settings: Settings) -> int:
    return len(net_state(settings).replicas)


def replica_ids(settings: Settings) -> set[str]:
    return {replica.replica for replica in net_state(settings).replicas}
