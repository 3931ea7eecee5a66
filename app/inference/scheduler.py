"""Dynamic batching with a bounded queue: one batch in flight per device, at most N waiting.

Requests queue per BatchKey (one model file, one set of outputs). A single worker thread takes
the group whose oldest request has waited longest, waits up to ``batch_wait_s`` after that
request for more of the same group, but only while more are on their way (announced with
``arriving`` and still decoding), runs ONE ``session.run`` on the stacked images and hands each
request its own slice.

The scheduler is given the model store (store.py) and asks it for each batch's session; a
session is normally loaded before its requests join the queue (loading is not queueing), and
the worker loads it itself only when the store dropped it meanwhile.

Deadlines are kept by the waiting requests themselves, so no clock thread is needed:

- a request still queued after ``queue_deadline_s`` leaves the queue with Overloaded (503);
- a request whose run passes ``inference_deadline_s`` cancels it (``RunOptions.terminate``),
  answers every request of that run with InferenceTimeout, has the store drop the session and
  starts a new worker, so the queue moves on even if the old run never returns. The old worker
  retires when it does.

A full queue refuses at once with Overloaded. A run that raises, or returns NaN or infinity for
an image, answers those requests with InferenceFailed; the session stays, the next run is normal.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, InvalidStateError
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from app.inference.errors import InferenceError, InferenceFailed, InferenceTimeout, Overloaded
from app.inference.results import QueueStatus
from app.inference.sessions import Loaded, SessionKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    batch_max: int
    batch_wait_s: float
    queue_max: int
    queue_deadline_s: float
    inference_deadline_s: float


@dataclass(frozen=True)
class BatchKey:
    """Requests that can share one run: the same build of one model file, the same outputs."""

    model_id: str
    session: SessionKey
    input_name: str
    outputs: tuple[str, ...]
    batch_max: int | None = None  # a smaller cap than the scheduler's for these requests
    which: Literal["model", "features"] = "model"  # the net's file the session is of


@dataclass(frozen=True)
class Answer:
    outputs: list[NDArray[np.float32]]  # this request's outputs, each with a batch dimension of 1
    provider: str
    queue_ms: float  # from joining the queue to the start of the run that carried it
    run_ms: float  # that run's wall time, shared with the batch's other images
    batch_size: int


@dataclass(eq=False)
class Run:
    jobs: list[Job]
    loaded: Loaded
    started: float
    deadline: float
    options: ort.RunOptions = field(default_factory=ort.RunOptions)


class Sessions(Protocol):
    """What the scheduler asks of the model store (store.py)."""

    def session_for(self, key: BatchKey) -> Loaded:
        """The session for ``key``, loaded if need be; an InferenceError (ModelUnavailable)
        when the model cannot be served."""
        ...

    def discard(self, key: SessionKey, loaded: Loaded) -> None:
        """Forget a session whose run hung: the next request loads a fresh one."""
        ...


@dataclass(eq=False)
class Job:
    """One image waiting for (or riding in) a run; the request holds it as its ticket."""

    key: BatchKey
    image: NDArray[np.float32]  # (1, C, H, W)
    enqueued: float
    future: Future[Answer] = field(default_factory=Future)
    # Set, under the scheduler's lock, when the job leaves the queue for a run. The job keeps
    # no reference to its run: a cycle would keep the run's session alive until the next
    # garbage collection, long after the cache dropped it.
    run_deadline: float | None = None
    left_queue: threading.Event = field(default_factory=threading.Event)  # taken or answered


class Arrival:
    """A request on its way to the queue (decoding, preprocessing): the worker may wait for it."""

    def __init__(self, scheduler: BatchScheduler, key: BatchKey) -> None:
        self._scheduler = scheduler
        self.key = key
        self.submitted = False

    def submit(self, image: NDArray[np.float32]) -> Job:
        self.submitted = True
        return self._scheduler.submit(self.key, image, arrived=True)


class BatchScheduler:
    def __init__(self, limits: Limits, store: Sessions) -> None:
        self._limits = limits
        self._store = store
        self._lock = threading.Condition()
        self._groups: dict[BatchKey, deque[Job]] = {}
        self._waiting = 0
        self._arriving: Counter[BatchKey] = Counter()
        self._in_flight: Run | None = None
        self._generation = 0  # the current worker's; a worker of an older one retires
        self._worker_started = False
        self._closed = False

    @contextmanager
    def arriving(self, key: BatchKey) -> Iterator[Arrival]:
        """Announce a request for ``key`` while it is prepared; submit it through the Arrival.

        Requests being prepared count against the queue's bound, so an overloaded service
        refuses at once, before decoding anything."""
        arrival = Arrival(self, key)
        with self._lock:
            self._refuse_when_full(self._waiting + self._arriving.total())
            self._arriving[key] += 1
        try:
            yield arrival
        finally:
            if not arrival.submitted:
                with self._lock:
                    self._leave(key)

    def submit(
        self,
        key: BatchKey,
        image: NDArray[np.float32],
        arrived: bool = False,
    ) -> Job:
        """Queue one (1, C, H, W) image; Overloaded at once when the queue is full."""
        with self._lock:
            if arrived:
                self._leave(key)
            self._refuse_when_full(self._waiting)
            job = Job(key, image, time.monotonic())
            self._groups.setdefault(key, deque()).append(job)
            self._waiting += 1
            self._start_worker_once()
            self._lock.notify_all()
        return job

    def result(self, job: Job) -> Answer:
        """Wait for ``job``'s answer, enforcing the queue deadline and the inference deadline."""
        queue_left = job.enqueued + self._limits.queue_deadline_s - time.monotonic()
        if not job.left_queue.wait(timeout=max(0.0, queue_left)):
            self._withdraw(job)  # answers it Overloaded if it is still queued
        if job.run_deadline is not None:
            try:
                return job.future.result(timeout=max(0.0, job.run_deadline - time.monotonic()))
            except TimeoutError:
                self._abandon_run_of(job)  # answers its requests InferenceTimeout
        return job.future.result()

    def status(self) -> QueueStatus:
        with self._lock:
            in_flight = len(self._in_flight.jobs) if self._in_flight else 0
            return QueueStatus(
                waiting=self._waiting,
                queue_max=self._limits.queue_max,
                in_flight=in_flight,
                batch_max=self._limits.batch_max,
            )

    def close(self) -> None:
        """Stop the worker after its current run; requests still queued get Overloaded."""
        with self._lock:
            self._closed = True
            for jobs in self._groups.values():
                for job in jobs:
                    _settle(job, Overloaded("the inference service is shutting down", 1))
            self._groups.clear()
            self._waiting = 0
            self._lock.notify_all()

    # The worker.

    def _start_worker_once(self) -> None:
        if not self._worker_started:
            self._worker_started = True
            self._start_worker(self._generation)

    def _start_worker(self, generation: int) -> None:
        name = f"inference-worker-{generation}"
        threading.Thread(target=self._work, args=(generation,), name=name, daemon=True).start()

    def _work(self, generation: int) -> None:
        while True:
            run = self._next_run(generation)
            if run is None:
                return
            self._execute(run)
            del run  # waiting for (and loading) the next batch must not keep this one's session

    def _next_run(self, generation: int) -> Run | None:
        """The next batch to run, with its session; None when this worker is to stop."""
        while (head := self._ready_head(generation)) is not None:
            key = head.key
            cap = key.batch_max or self._limits.batch_max
            try:
                loaded = self._open(head)
            except InferenceError as error:  # this model cannot be served: say so to a batch
                self._refuse(key, cap, error)
                continue
            with self._lock:
                run = self._take(key, loaded, loaded.batch_limit(cap), time.monotonic())
            if run is not None:
                return run
        return None

    def _ready_head(self, generation: int) -> Job | None:
        """The oldest request of the group to run next, once that group is full, nothing more
        for it is on its way, or the request has waited ``batch_wait_s``; None when this worker
        is to stop."""
        with self._lock:
            while self._generation == generation and not self._closed:
                key = self._oldest_key()
                if key is None:
                    self._lock.wait()
                    continue
                jobs = self._groups[key]
                now = time.monotonic()
                ready_at = jobs[0].enqueued + self._limits.batch_wait_s
                full = len(jobs) >= (key.batch_max or self._limits.batch_max)
                if full or self._arriving[key] == 0 or now >= ready_at:
                    return jobs[0]
                self._lock.wait(ready_at - now)
            return None

    def _open(self, head: Job) -> Loaded:
        """The session for ``head``'s group from the store (loaded already, as a rule)."""
        try:
            return self._store.session_for(head.key)
        except InferenceError:
            raise
        except Exception as error:  # an unexpected failure to load: the requests get a 500
            log.exception("%s: loading the model failed", head.key.model_id)
            reason = f"loading the model failed: {_first_line(error)}"
            raise InferenceFailed(head.key.model_id, reason) from error

    def _refuse(self, key: BatchKey, limit: int, error: InferenceError) -> None:
        with self._lock:
            jobs = self._pop(key, limit, time.monotonic())
        for job in jobs:
            _settle(job, copy.copy(error))  # one exception object per request thread

    def _oldest_key(self) -> BatchKey | None:
        if not self._groups:
            return None
        return min(self._groups, key=lambda key: self._groups[key][0].enqueued)

    def _take(self, key: BatchKey, loaded: Loaded, limit: int, now: float) -> Run | None:
        """Up to ``limit`` jobs of ``key`` as the run in flight."""
        jobs = self._pop(key, limit, now)
        if not jobs:
            return None
        run = Run(jobs, loaded, started=now, deadline=now + self._limits.inference_deadline_s)
        for job in jobs:
            job.run_deadline = run.deadline
            job.left_queue.set()
        self._in_flight = run
        return run

    def _pop(self, key: BatchKey, limit: int, now: float) -> list[Job]:
        """Up to ``limit`` jobs of ``key`` out of the queue; jobs already past the queue
        deadline are answered Overloaded instead (their requests are about to give up)."""
        group = self._groups.get(key, deque())
        jobs: list[Job] = []
        while group and len(jobs) < limit:
            job = group.popleft()
            self._waiting -= 1
            if now - job.enqueued > self._limits.queue_deadline_s:
                _settle(job, self._queue_timeout())
            else:
                jobs.append(job)
        if not group:
            self._groups.pop(key, None)
        return jobs

    def _execute(self, run: Run) -> None:
        try:
            answers = self._answers(run)
        except Exception as error:  # ORT's errors have no common base; any failure is the run's
            log.warning("inference run failed: %s", error)
            reason = f"the inference run failed: {_first_line(error)}"
            answers = [InferenceFailed(run.jobs[0].key.model_id, reason) for _ in run.jobs]
        with self._lock:
            if self._in_flight is run:
                self._in_flight = None
        for job, answer in zip(run.jobs, answers, strict=True):
            _settle(job, answer)

    def _answers(self, run: Run) -> list[Answer | InferenceError]:
        key = run.jobs[0].key
        images = np.concatenate([job.image for job in run.jobs])
        outputs = run.loaded.session.run(list(key.outputs), {key.input_name: images}, run.options)
        run_ms = (time.monotonic() - run.started) * 1000
        _check_rows(outputs, len(run.jobs))
        return [
            _answer(job, [output[i : i + 1] for output in outputs], run, run_ms)
            for i, job in enumerate(run.jobs)
        ]

    # Deadlines, kept by the waiting requests.

    def _withdraw(self, job: Job) -> None:
        with self._lock:
            group = self._groups.get(job.key)
            if job.run_deadline is not None or group is None or job not in group:
                return
            group.remove(job)
            self._waiting -= 1
            if not group:
                del self._groups[job.key]
        _settle(job, self._queue_timeout())

    def _abandon_run_of(self, job: Job) -> None:
        """Give up on the run carrying ``job``, past its deadline: cancel it, answer its
        requests, and let a new worker (with a fresh session) serve the queue. Once per run,
        by whichever of its requests notices first; a run already over is left alone."""
        with self._lock:
            run = self._in_flight
            if run is None or not any(rider is job for rider in run.jobs):
                return
            self._in_flight = None
            self._generation += 1
            if not self._closed:
                self._start_worker(self._generation)
            self._lock.notify_all()
        run.options.terminate = True  # ORT stops at its next node; a hung kernel may not
        head = run.jobs[0]
        deadline = self._limits.inference_deadline_s
        log.warning("%s: a run passed the %g s inference deadline", head.key.model_id, deadline)
        reason = f"the inference run passed the {deadline:g} s deadline and was cancelled"
        for job in run.jobs:
            _settle(job, InferenceTimeout(job.key.model_id, reason))
        self._store.discard(head.key.session, run.loaded)

    def _refuse_when_full(self, queued: int) -> None:
        if self._closed:
            raise Overloaded("the inference service is shutting down", 1)
        if queued >= self._limits.queue_max:
            # Within queue_deadline_s every request now queued has been served or refused.
            raise Overloaded(
                f"the inference queue is full ({queued} images wait)",
                self._limits.queue_deadline_s,
            )

    def _queue_timeout(self) -> Overloaded:
        deadline = self._limits.queue_deadline_s
        return Overloaded(f"waited {deadline:g} s in the inference queue", deadline)

    def _leave(self, key: BatchKey) -> None:
        self._arriving[key] -= 1
        if self._arriving[key] <= 0:
            del self._arriving[key]
        self._lock.notify_all()  # the worker may be waiting for this one


def _answer(
    job: Job, outputs: list[NDArray[np.float32]], run: Run, run_ms: float
) -> Answer | InferenceError:
    if not all(np.isfinite(output).all() for output in outputs):
        return InferenceFailed(job.key.model_id, "the model returned NaN or infinity")
    return Answer(
        outputs=outputs,
        provider=run.loaded.provider,
        queue_ms=(run.started - job.enqueued) * 1000,
        run_ms=run_ms,
        batch_size=len(run.jobs),
    )


def _check_rows(outputs: list[Any], images: int) -> None:
    for output in outputs:
        if not isinstance(output, np.ndarray) or output.ndim == 0 or output.shape[0] != images:
            shape = getattr(output, "shape", type(output).__name__)
            raise ValueError(f"an output of shape {shape} for a batch of {images}")


def _settle(job: Job, answer: Answer | InferenceError) -> None:
    """Answer a job once: the first answer wins (a run answered late after a timeout is not)."""
    job.left_queue.set()
    try:
        if isinstance(answer, Answer):
            job.future.set_result(answer)
        else:
            job.future.set_exception(answer)
    except InvalidStateError:
        pass


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
