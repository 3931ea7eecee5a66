"""The Ray Serve path beside the in-process one: images/s and latency at 1, 16 and 64 clients
for `local`, `ray` with one replica and `ray` with two, and the Ray path's cost per request.

A real two-node local Ray cluster (ray.cluster_utils.Cluster: two raylets on this machine, two
logical CPUs each) holds two Serve applications of the same net, one with one replica and one
with two (one CPU each), deployed by the same code as `convatlas cluster deploy`. Three
`convatlas serve` processes take the load: one local, one per application (CONVATLAS_INFERENCE
_BACKEND=ray, no model repository of their own). Backends and levels run in rounds, alternating
their order, as the concurrency section does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from scripts.bench import images, loadgen
from scripts.bench.common import MIB, Context, build_models
from scripts.bench.concurrency import Level, warm_up
from scripts.bench.report import Section
from scripts.bench.server import Server, serve
from scripts.bench.stats import quantile, spread

NET = "alexnet-lecture"  # the smallest net: three copies of it share this machine's memory
LEVELS = (1, 16, 64)
BACKENDS = {"local": None, "ray, 1 replica": 1, "ray, 2 replicas": 2}
OBJECT_STORE = 400 * MIB


@contextmanager
def local_cluster() -> Iterator[str]:
    """Two raylets on this machine; the address of the head."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve as ray_serve
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 2,
            "object_store_memory": OBJECT_STORE,
            "include_dashboard": False,
        },
    )
    cluster.add_node(num_cpus=2, object_store_memory=OBJECT_STORE)
    cluster.wait_for_nodes()
    try:
        yield cluster.address
    finally:
        if ray.is_initialized():
            ray_serve.shutdown()
            ray.shutdown()
        cluster.shutdown()


def _deploy(address: str, models_root: Path, replicas: int) -> str:
    """The net as its own Serve application with ``replicas`` fixed replicas; its name."""
    from app.cluster.deploy import deploy
    from app.settings import Settings

    name = f"bench-{replicas}"
    settings = Settings(
        ray_address=address,
        ray_app_name=name,
        providers="cpu",
        cluster_min_replicas=replicas,
        cluster_max_replicas=replicas,
    )
    deploy(settings, models_root, [NET])
    return name


def run(context: Context) -> Section:
    section = Section("cluster", "Ray Serve cluster beside one process (alexnet-lecture)")
    built = build_models(context.models_root, (NET,))
    photo = images.jpeg(images.VGA)
    request = loadgen.post_file(f"/api/predict/{NET}", "image", "photo.jpg", "image/jpeg", photo)
    levels = {(name, clients): Level(clients) for name in BACKENDS for clients in LEVELS}
    rounds, seconds_each = (1, 3.0) if context.quick else (2, 6.0)
    empty = context.models_root.parent / "no-models"
    empty.mkdir(parents=True, exist_ok=True)
    with local_cluster() as address, ExitStack() as servers:
        started: dict[str, Server] = {}
        for name, replicas in BACKENDS.items():
            if replicas is None:
                started[name] = servers.enter_context(serve(context.models_root))
                continue
            env = {
                "CONVATLAS_INFERENCE_BACKEND": "ray",
                "CONVATLAS_RAY_ADDRESS": address,
                "CONVATLAS_RAY_APP_NAME": _deploy(address, context.models_root, replicas),
            }
            started[name] = servers.enter_context(serve(empty, env))
        for server in started.values():
            warm_up(server, request)
        for index in range(rounds):
            order = list(BACKENDS) if index % 2 == 0 else list(BACKENDS)[::-1]
            for name in order:
                for clients in LEVELS if index % 2 == 0 else LEVELS[::-1]:
                    load = loadgen.run_load(
                        started[name].port,
                        [request],
                        clients=clients,
                        max_requests=5000,
                        max_seconds=seconds_each,
                    )
                    levels[name, clients].record(load)
    _describe(section, levels, photo, rounds, seconds_each)
    section.commands += [built.command, "python -m scripts.bench --only cluster"]
    return section


def _describe(
    section: Section,
    levels: dict[tuple[str, int], Level],
    photo: bytes,
    rounds: int,
    seconds_each: float,
) -> None:
    section.add(
        f"Net: `{NET}` (untrained). Each client uploads a {images.describe(photo)} to "
        f"`POST /api/predict/{NET}` on a keep-alive connection and sends the next as soon as "
        f"the answer is in. {rounds} rounds of {seconds_each:.0f} s per backend and level, in "
        "alternating order. The three web processes, the two raylets, the Serve controller, "
        "the replicas and the load generator all share this machine's 2 cores.",
        "",
    )
    rows = []
    for (name, clients), level in levels.items():
        rows.append(
            (
                name,
                clients,
                spread(level.per_second).text(1),
                f"{quantile(level.latencies, 0.5) * 1000:.1f}",
                f"{quantile(level.latencies, 0.99) * 1000:.1f}",
                len(level.latencies),
                level.refused,
            )
        )
    header = ("backend", "clients", "images/s (IQR)", "p50 ms", "p99 ms", "answers", "refused")
    section.table(header, rows)
    section.add(
        "Refused: 503 answers. Each web process admits CONVATLAS_MAX_CONCURRENT_UPLOADS (24) "
        "uploads at once and answers the rest 503 with Retry-After at once, whatever the "
        "backend; the load generator waits that long before its next try.",
        "",
    )
    local = quantile(levels["local", 1].latencies, 0.5)
    ray = quantile(levels["ray, 1 replica", 1].latencies, 0.5)
    overhead = (ray - local) * 1000
    section.add(
        f"Per-request overhead of the Ray path at 1 client (p50 of `ray, 1 replica` minus p50 "
        f"of `local`): {overhead:.1f} ms ({ray / local:.2f}x the local p50). It is the tensor's "
        "trip to the replica and back through Serve's router and the object store, and the "
        "replica's own process switch.",
        "",
        "On 2 cores the cluster cannot beat one process: every replica, raylet and web process "
        "competes for the same two cores the local backend has to itself, so a second replica "
        "adds no compute here, only more processes. What this measures is the overhead; on "
        "machines with cores (or GPUs) for each replica, throughput grows with replicas because "
        "each replica runs its batches on its own hardware.",
        "",
    )
