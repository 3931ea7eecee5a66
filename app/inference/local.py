"""The default InferenceBackend: ONNX Runtime in this process, as store -> scheduler.

    run(): the net's manifest (store) -> its session loaded, within the load deadline (store)
           -> the queue, batched with other requests for the same file (scheduler) -> outputs

A request that decodes its upload may announce itself first (``arriving``): it then counts
against the queue's bound while it decodes, and the worker waits for it to fill a batch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.inference.backend import BatchOutput, Outputs
from app.inference.integrity import Verifier
from app.inference.results import ServiceStatus
from app.inference.scheduler import Arrival, BatchKey, BatchScheduler, Limits
from app.inference.sessions import SessionFactory, ort_session
from app.inference.store import ModelStore, Which
from app.repository.manifest import Manifest
from app.settings import Settings


@dataclass
class _Announced:
    """The arrivals the current thread has announced, by batch key."""

    arrivals: dict[BatchKey, Arrival]


class LocalBackend:
    def __init__(
        self,
        settings: Settings,
        known_ids: list[str],
        *,
        open_session: SessionFactory = ort_session,
        verifier: Verifier | None = None,
    ) -> None:
        self._settings = settings
        self.store = ModelStore(settings, known_ids, open_session=open_session, verifier=verifier)
        self._scheduler = BatchScheduler(_limits(settings), self.store)
        self._announced = threading.local()

    def manifest(self, model_id: str) -> Manifest:
        return self.store.manifest(model_id)

    @contextmanager
    def arriving(self, model_id: str, outputs: Outputs) -> Iterator[None]:
        """Announce a request for ``model_id`` while its upload decodes; its ``run`` in this
        thread then joins the queue as that arrival. Overloaded at once when the queue is full."""
        key = self._key(self.store.manifest(model_id), outputs)
        with self._scheduler.arriving(key) as arrival:
            arrivals = self._arrivals()
            arrivals[key] = arrival
            try:
                yield
            finally:
                arrivals.pop(key, None)

    def run(
        self, model_id: str, images: NDArray[np.float32], outputs: Outputs, deadline_s: float
    ) -> BatchOutput:
        manifest = self.store.manifest(model_id)
        key = self._key(manifest, outputs)
        self.store.ready(key, min(self._settings.load_deadline_s, deadline_s))
        arrival = self._arrivals().pop(key, None)
        jobs = []
        for i in range(images.shape[0]):
            image = images[i : i + 1]
            if arrival is not None and i == 0:
                jobs.append(arrival.submit(image))
            else:
                jobs.append(self._scheduler.submit(key, image))
        answers = [self._scheduler.result(job) for job in jobs]
        stacked = [
            np.concatenate(parts) for parts in zip(*(a.outputs for a in answers), strict=True)
        ]
        first = answers[0]
        return BatchOutput(
            logits=stacked[0] if outputs == "logits" else None,
            feature_maps=stacked if outputs == "features" else None,
            provider=first.provider,
            queue_ms=max(answer.queue_ms for answer in answers),
            run_ms=max(answer.run_ms for answer in answers),
        )

    def status(self) -> ServiceStatus:
        """The provider, the queue and each net's state; a file not verified yet is asked for
        (in the background: status() never hashes)."""
        choice = self.store.provider()
        nets = [self.store.net_status(model_id) for model_id in self.store.known]
        return ServiceStatus(
            requested_provider=choice.requested,
            provider=choice.provider,
            provider_reason=choice.reason,
            models_dir=str(self.store.root),
            build_running=self.store.build_running(),
            queue=self._scheduler.status(),
            models=[model for model, _ in nets],
            integrity=[integrity for _, integrity in nets],
        )

    def close(self) -> None:
        """Stop the background verification, then the inference worker after its current run;
        queued requests get Overloaded."""
        self.store.close()
        self._scheduler.close()

    def _key(self, manifest: Manifest, outputs: Outputs) -> BatchKey:
        which: Which = "model" if outputs == "logits" else "features"
        return self.store.batch_key(manifest, which)

    def _arrivals(self) -> dict[BatchKey, Arrival]:
        announced: _Announced | None = getattr(self._announced, "value", None)
        if announced is None:
            announced = _Announced({})
            self._announced.value = announced
        return announced.arrivals


def _limits(settings: Settings) -> Limits:
    return Limits(
        batch_max=settings.batch_max,
        batch_wait_s=settings.batch_wait_ms / 1000,
        queue_max=settings.queue_max,
        queue_deadline_s=settings.queue_deadline_s,
        inference_deadline_s=settings.inference_deadline_s,
    )
