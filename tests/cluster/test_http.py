"""`convatlas serve` with the ray backend, through real HTTP: the net deployed by the
`convatlas cluster deploy` command with one replica, as a course would start; the web process
has no model repository of its own (an empty folder), as on a machine with no shared disk."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.cluster.deploy import deploy
from app.settings import Settings
from scripts.liveserver import LiveServer, free_port, server_env, serving
from tests.cluster.support import (
    NET,
    SETTLE_S,
    LocalCluster,
    Status,
    Stream,
    kill_replica,
    local_answer,
    net_state,
    wait_for,
)

TIMEOUT_S = 20.0
RECOVERY_LIMIT_S = 60.0  # the bound: answering 200 again within a minute of a crash


@pytest.fixture(scope="module")
def one_replica(
    ray_cluster: LocalCluster, deployed: Settings, models_root: Path
) -> Iterator[Settings]:
    """The net deployed by the command, with its defaults but one replica at most."""
    env = {
        **server_env(models_root),
        "CONVATLAS_CLUSTER_MIN_REPLICAS": "1",
        "CONVATLAS_CLUSTER_MAX_REPLICAS": "1",
    }
    command = [sys.executable, "-m", "app.cli", "cluster", "deploy", NET]
    command += ["--root", str(models_root), "--address", ray_cluster.address]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{NET}: HEALTHY; replicas: 1 running" in done.stdout
    settings = deployed.model_copy(update={"cluster_min_replicas": 1, "cluster_max_replicas": 1})
    wait_for(lambda: len(net_state(settings).replicas) == 1, "the replica reports")
    yield settings
    deploy(deployed, models_root, [NET])  # back to the two replicas the other tests expect


@pytest.fixture(scope="module")
def server(one_replica: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    empty = tmp_path_factory.mktemp("no-models")
    env = server_env(
        empty,
        {
            "CONVATLAS_INFERENCE_BACKEND": "ray",
            "CONVATLAS_RAY_ADDRESS": one_replica.ray_address or "",
            "CONVATLAS_CLUSTER_REQUEST_TIMEOUT_S": str(TIMEOUT_S),
        },
    )
    with serving(env) as live:
        yield live


def post_photo(server: LiveServer, photo: bytes) -> httpx.Response:
    files = {"image": ("photo.jpg", photo, "image/jpeg")}
    return httpx.post(f"{server.url}/api/predict/{NET}", files=files, timeout=TIMEOUT_S * 3)


def test_the_same_top5_as_the_local_backend(
    server: LiveServer, one_replica: Settings, photo_jpeg: bytes
) -> None:
    answer = local_answer(one_replica, lambda local: local.predict(NET, photo_jpeg))
    expected = answer.model_dump(mode="json")
    response = post_photo(server, photo_jpeg)
    assert response.status_code == 200, response.text
    got = response.json()
    assert [c["index"] for c in got["top5"]] == [c["index"] for c in expected["top5"]]
    assert [c["label"] for c in got["top5"]] == [c["label"] for c in expected["top5"]]
    assert set(got) == set(expected) | {"served_by"}
    [replica] = net_state(one_replica).replicas
    assert got["served_by"] == {
        "node_id": replica.node_id,
        "node_ip": replica.node_ip,
        "replica": replica.replica,
    }


def test_readyz_shows_the_cluster(server: LiveServer, ray_cluster: LocalCluster) -> None:
    inference = server.get("/readyz").json()["inference"]
    cluster = inference["cluster"]
    # The head's host and port are ours, not the public's: /readyz says "its address".
    assert ray_cluster.address not in json.dumps(inference)
    assert (cluster["address"], cluster["reachable"], cluster["status"]) == (
        "its address",
        True,
        "RUNNING",
    )
    assert cluster["nodes_alive"] == 2
    [net] = cluster["nets"]
    assert net["id"] == NET
    assert net["replica_states"] == {"RUNNING": 1}
    [model] = [m for m in inference["models"] if m["id"] == NET]
    assert (model["available"], model["weights"]) == (True, "untrained")
    others = [m for m in inference["models"] if m["id"] != NET]
    assert all(not m["available"] and "not deployed" in m["reason"] for m in others)


def test_a_net_not_deployed_is_503_naming_the_command(
    server: LiveServer, photo_jpeg: bytes
) -> None:
    files = {"image": ("photo.jpg", photo_jpeg, "image/jpeg")}
    response = httpx.post(f"{server.url}/api/predict/vgg11", files=files, timeout=TIMEOUT_S)
    assert response.status_code == 503
    assert "convatlas cluster deploy vgg11" in response.json()["error"]["message"]


def test_killing_the_replica_leaves_200_again_within_a_minute_and_no_500(
    server: LiveServer, one_replica: Settings, photo_jpeg: bytes
) -> None:
    def call() -> Status:
        response = post_photo(server, photo_jpeg)
        retry = response.headers.get("retry-after")
        return response.status_code, int(retry) if retry else None

    with Stream(call) as stream:
        wait_for(lambda: stream.answered() >= 3, "answers before the kill")
        kill_replica(one_replica)
        killed_at = time.monotonic()
        back = wait_for(
            lambda: stream.answered_after(killed_at) >= 3,
            "200 again after the kill",
            timeout_s=RECOVERY_LIMIT_S,
        )
    stream.assert_clean(TIMEOUT_S * 2 + 5)
    print(f"HTTP, one replica killed: 200 again within {back:.1f} s; {dict(stream.statuses())}")
    assert SETTLE_S >= RECOVERY_LIMIT_S


def test_an_unreachable_cluster_is_ready_but_503_with_retry_after(
    tmp_path: Path, photo_jpeg: bytes
) -> None:
    """A web tier whose cluster is down starts, says so on /readyz, and refuses uploads with
    503 + Retry-After at once (ray.init alone would retry for minutes)."""
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    refused = "cannot reach the Ray cluster at its address: Connection refused"
    env = server_env(
        tmp_path, {"CONVATLAS_INFERENCE_BACKEND": "ray", "CONVATLAS_RAY_ADDRESS": address}
    )
    with serving(env) as live:
        cluster = live.get("/readyz").json()["inference"]["cluster"]
        assert (cluster["reachable"], cluster["status"]) == (False, "UNREACHABLE")
        assert cluster["message"] == refused
        started = time.monotonic()
        response = post_photo(live, photo_jpeg)
        assert time.monotonic() - started < TIMEOUT_S
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "cluster_unavailable"
    assert error["message"] == refused
