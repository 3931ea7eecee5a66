"""Helpers for the cluster tests: the cluster's handles, waiting by polling, a stream of
clients whose every outcome is recorded, killing a replica."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import ray
from ray.cluster_utils import Cluster

from app.cluster.deploy import SERVE_NAMESPACE, cluster_state
from app.inference.errors import InferenceError
from app.inference.results import NetDeployment
from app.inference.service import InferenceService
from app.settings import Settings

NET = "alexnet-lecture"
MIB = 1024 * 1024
# Each node's object store: room for the net's two files (130 MB) and the requests' tensors.
OBJECT_STORE = 400 * MIB
# How long a state the tests wait for may take to come (a replica loads its net in seconds).
SETTLE_S = 90.0


@dataclass
class LocalCluster:
    cluster: Cluster
    head_id: str
    worker: Any  # the worker node's handle, for remove_node
    worker_id: str
    address: str

    def add_worker(self) -> None:
        self.worker = self.cluster.add_node(
            num_cpus=1, resources={"worker_node": 1}, object_store_memory=OBJECT_STORE
        )
        self.cluster.wait_for_nodes()
        self.worker_id = self.worker.node_id


def net_state(settings: Settings, net: str = NET) -> NetDeployment:
    [state] = [each for each in cluster_state(settings).nets if each.id == net]
    return state


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = SETTLE_S) -> float:
    """Poll until ``condition`` holds; the seconds it took. Fails the test after timeout_s."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.2)
    return time.monotonic() - started


@dataclass
class Outcome:
    status: int  # 200, or the refusal's HTTP status
    retry_after_s: int | None
    seconds: float
    at: float  # time.monotonic() when it was answered


Status = tuple[int, int | None]  # the HTTP status, and Retry-After if any


def through(call: Callable[[], object]) -> Callable[[], Status]:
    """A backend call as the status the web layer would answer it with."""

    def status() -> Status:
        try:
            call()
        except InferenceError as error:
            return error.http_status, error.retry_after_s
        return 200, None

    return status


@dataclass
class Stream:
    """Clients sending the photo again and again, each outcome recorded: ``call`` answers the
    HTTP status (and Retry-After); anything it raises is recorded as an error."""

    call: Callable[[], Status]
    clients: int = 3
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Stream:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=SETTLE_S)
        assert not any(thread.is_alive() for thread in self._threads), "a request hung"

    def answered(self) -> int:
        with self._lock:
            return sum(outcome.status == 200 for outcome in self.outcomes)

    def answered_after(self, moment: float) -> int:
        with self._lock:
            return sum(o.status == 200 and o.at > moment for o in self.outcomes)

    def statuses(self) -> Counter[int]:
        with self._lock:
            return Counter(outcome.status for outcome in self.outcomes)

    def assert_clean(self, timeout_s: float) -> None:
        """Every request got 200 or 503 with Retry-After within ``timeout_s``; nothing else."""
        assert not self.errors, self.errors[:3]
        assert set(self.statuses()) <= {200, 503}, self.statuses()
        refused = [o for o in self.outcomes if o.status == 503]
        assert all(o.retry_after_s is not None and o.retry_after_s >= 1 for o in refused)
        assert max(o.seconds for o in self.outcomes) < timeout_s

    def _client(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status, retry = self.call()
            except BaseException as error:  # recorded: the test fails on any
                with self._lock:
                    self.errors.append(error)
                continue
            done = time.monotonic()
            with self._lock:
                self.outcomes.append(Outcome(status, retry, done - started, done))


def kill_replica(settings: Settings, node_id: str | None = None) -> str:
    """Kill one live replica's actor (on ``node_id`` if given), as a crash would; its id."""
    replicas = net_state(settings).replicas
    victim = next(r for r in replicas if node_id is None or r.node_id == node_id)
    ray.kill(ray.get_actor(victim.actor_name, namespace=SERVE_NAMESPACE), no_restart=True)
    return victim.replica


Answer = TypeVar("Answer")


def local_answer(settings: Settings, ask: Callable[[InferenceService], Answer]) -> Answer:
    """What the local backend (in this process, on the same repository) answers."""
    local = InferenceService(settings.model_copy(update={"inference_backend": "local"}))
    try:
        return ask(local)
    finally:
        local.close()
