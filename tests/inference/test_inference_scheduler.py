"""The batch scheduler on its own, with a scripted session: merging, waiting, limits, faults.

Each image is a (1, 1, 1, 1) array holding one number and the session answers with that number
per row, so every request can check it got its own slice of the batch. Tests hold a run open
(``hold``) to fill the queue deterministically; no assertion depends on how fast anything runs.
"""

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.inference.errors import InferenceFailed, InferenceTimeout, ModelUnavailable, Overloaded
from app.inference.scheduler import Answer, BatchKey, BatchScheduler, Limits
from app.inference.sessions import Loaded, SessionKey

KEY = BatchKey("net", SessionKey(Path("net/1/model.onnx"), "0" * 64), "input", ("logits",))
OTHER = BatchKey("other", SessionKey(Path("other/1/model.onnx"), "1" * 64), "input", ("logits",))
LIMITS = Limits(
    batch_max=8, batch_wait_s=0.005, queue_max=32, queue_deadline_s=10, inference_deadline_s=30
)


class ScriptedSession:
    """Answers each image's number; ``actions`` says what the next runs do instead: "hold"
    (until ``release``), "stall" (a hang: until the test ends, whatever ORT's terminate flag
    says), "raise", "nan" (for the first image) or "wrong rows"."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.actions: deque[str] = deque()
        self.holding = threading.Event()  # set once a "hold" run has started
        self.release = threading.Event()
        self.unstall = threading.Event()
        self.run_options: list[Any] = []
        self.outputs_asked: list[list[str]] = []
        self.max_batch: dict[BatchKey, int] = {}  # a fixed batch of 1, per key

    def run(
        self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any], run_options: Any
    ) -> list[Any]:
        images = input_feed["input"]
        self.outputs_asked.append(list(output_names or []))
        self.batches.append(len(images))
        self.run_options.append(run_options)
        action = self.actions.popleft() if self.actions else "answer"
        if action == "hold":
            self.holding.set()
            self.release.wait()
        if action == "stall":
            self.unstall.wait()
        if action == "raise":
            raise RuntimeError("injected failure")
        rows = images.reshape(len(images), 1).astype(np.float32)
        if action == "nan":
            rows[0] = np.nan
        if action == "wrong rows":
            rows = rows[:1]
        return [rows]

    def get_providers(self) -> list[str]:
        return ["ScriptedProvider"]

    def get_inputs(self) -> list[Any]:
        return []

    def get_outputs(self) -> list[Any]:
        return []


@pytest.fixture
def session() -> Iterator[ScriptedSession]:
    scripted = ScriptedSession()
    yield scripted
    scripted.release.set()  # a held or stalled run must not outlive its test
    scripted.unstall.set()


class ScriptedStore:
    """The model store as the scheduler sees it: every key's session is the scripted one, or
    ``failure`` when set; it records which threads asked and which sessions it was told hung."""

    def __init__(self, session: ScriptedSession) -> None:
        self.session = session
        self.failure: Exception | None = None
        self.asked_in: list[str] = []
        self.hung: list[SessionKey] = []

    def session_for(self, key: BatchKey) -> Loaded:
        self.asked_in.append(threading.current_thread().name)
        if self.failure is not None:
            raise self.failure
        return Loaded(self.session, "ScriptedProvider", 1, self.session.max_batch.get(key))

    def discard(self, key: SessionKey, loaded: Loaded) -> None:
        assert loaded.session is self.session
        self.hung.append(key)


@pytest.fixture
def store(session: ScriptedSession) -> ScriptedStore:
    return ScriptedStore(session)


@pytest.fixture
def hung(store: ScriptedStore) -> list[SessionKey]:
    """The sessions the scheduler told the store to drop as hung."""
    return store.hung


@pytest.fixture
def make_scheduler(store: ScriptedStore) -> Iterator[Callable[..., BatchScheduler]]:
    made: list[BatchScheduler] = []

    def make(**overrides: Any) -> BatchScheduler:
        limits = Limits(**{**LIMITS.__dict__, **overrides})
        scheduler = BatchScheduler(limits, store)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.close()


def image(value: float) -> np.ndarray:
    return np.full((1, 1, 1, 1), value, dtype=np.float32)


def predict(
    scheduler: BatchScheduler,
    session: ScriptedSession,
    value: float,
    key: BatchKey = KEY,
    max_batch: int | None = None,
) -> Answer:
    """One request, start to end: queue one image and wait for its answer."""
    if max_batch is not None:
        session.max_batch[key] = max_batch
    return scheduler.result(scheduler.submit(key, image(value)))


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll until ``condition`` holds: a wait for state, never a timing assertion."""
    give_up = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < give_up, "the scheduler never reached the expected state"
        time.sleep(0.002)


def hold_first_run(
    scheduler: BatchScheduler, session: ScriptedSession, pool: ThreadPoolExecutor
) -> Future[Answer]:
    """A request whose run stays open until ``session.release`` is set."""
    session.actions.append("hold")
    first = pool.submit(predict, scheduler, session, -1.0)
    assert session.holding.wait(timeout=60)
    return first


def test_requests_waiting_behind_a_run_share_the_next_one(
    make_scheduler: Callable[..., BatchScheduler], session: ScriptedSession
) -> None:
    scheduler = make_scheduler()
    with ThreadPoolExecutor(max_workers=12) as pool:
        first = hold_first_run(scheduler, session, pool)
        rest = [pool.submit(predict, scheduler, session, float(i)) for i in range(10)]
        wait_until(lambda: scheduler.status().waiting == 10)
        assert scheduler.status().in_flight == 1
        session.release.set()
        answers = [future.result() for future in rest]
    assert first.result().batch_size == 1
    assert session.batches == [1, 8, 2]  # at most batch_max a run, in arrival order
    assert [float(answer.outputs[0][0, 0]) for answer in answers] == [float(i) for i in range(10)]
    assert sorted(answer.batch_size for answer in answers) == [2] * 2 + [8] * 8
    assert all(answer.outputs[0].shape == (1, 1) for answer in answers)


def test_a_lone_request_is_not_held_for_the_batch_wait(
    make_scheduler: Callable[..., BatchScheduler], session: ScriptedSession
) -> None:
    # Were it held for the 60 s batch wait, its 5 s queue deadline would refuse it.
    scheduler = make_scheduler(batch_wait_s=60, queue_deadline_s=5)
    assert predict(scheduler, session, 3.0).outputs[0][0, 0] == 3.0
    assert session.batches == [1]


def test_the_worker_waits_for_requests_still_on_their_way(
    make_scheduler: Callable[..., BatchScheduler], session: ScriptedSession
) -> None:
    scheduler = make_scheduler(batch_wait_s=60)
    with scheduler.arriving(KEY) as one, scheduler.arriving(KEY) as two:
        first = one.submit(image(1.0))  # `two` is still decoding
        second = two.submit(image(2.0))
    answers = [scheduler.result(first), scheduler.result(second)]
    assert session.batches == [2]
    assert [float(answer.outputs[0][0, 0]) for answer in answers] == [1.0, 2.0]


def test_a_request_that_gives_up_before_submitting_ends_the_wait(
    make_scheduler: Callable[..., BatchScheduler], session: ScriptedSession
) -> None:
    # Were the worker still waiting for the second request, the first would pass its deadline.
    scheduler = make_scheduler(batch_wait_s=60, queue_deadline_s=5)
    with (  # noqa: PT012 (the raise is what ends the second arrival)
        pytest.raises(ValueError, match="decode"),
        scheduler.arriving(KEY) as one,
        scheduler.arriving(KEY),
    ):
        job = one.submit(image(1.0))
        raise ValueError("the second upload fails to decode")
    assert scheduler.result(job).outputs[0][0, 0] == 1.0
    assert session.batches == [1]


def test_only_requests_for_the_same_model_and_outputs_share_a_run(
    make_scheduler: Callable[..., BatchScheduler], session: ScriptedSession
) -> None:
    scheduler = make_scheduler()
    with ThreadPoolExecutor(max_workers=6) as pool:
        first = hold_first_run(scheduler, session, pool)
        keys = [KEY, OTHER, KEY, OTHER, KEY]
        futures = [
            pool.submit(predict, scheduler, session, float(i), key) for i, key in enumerate(keys)
        ]
        wait_until(lambda: scheduler.status().waiting == 5)
        session.release.set()
        answers = [future.result() for future in futures]
        first.result()
    assert sorted(session.batches[1:]) == [2, 3]
    assert [float(answer.outputs[0][0, 0]) for answer in answers] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_a_model_with_a_fixed_batch_of_one_runs_one_image_at_a_time(
    make_scheduler: Callable[..., BatchScheduler], session: ScriptedSession
) -> None:
    scheduler = make_scheduler()
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = hold_first_run(scheduler, session, pool)
        futures = [pool.submit(predict, scheduler, session, v, KEY, 1) for v in (1.0, 2.0, 3.0)]
        wait_until(lambda: scheduler.status().waiting == 3)
        session.release.set()
        assert [future.result().batch_size for future in futures] == [1, 1, 1]
        first.result()
    assert session.batches == [1, 1, 1, 1]


def test_a_key_can_cap_its_batches_below_the_schedulers(
    make_scheduler: Callable[..., BatchScheduler], session: ScriptedSession
) -> None:
    scheduler = make_scheduler()
    one_at_a_time = replace(KEY, batch_max=1)
    with ThreadPoolExecutor(max_workers=3) as pool:
        first = hold_first_run(scheduler, session, pool)
        futures = [pool.submit(predict, scheduler, session, v, one_at_a_time) for v in (1.0, 2.0)]
        wait_until(lambda: scheduler.status().waiting == 2)
        session.release.set()
        assert [future.result().batch_size for future in futures] == [1, 1]
        first.result()
    assert session.batches == [1, 1, 1]


def test_a_full_queue_refuses_at_once_with_retry_after(
    make_scheduler: Callable[..., BatchScheduler], session: ScriptedSession
) -> None:
    scheduler = make_scheduler(queue_max=2, queue_deadline_s=29.5)
    with ThreadPoolExecutor(max_workers=3) as pool:
        first = hold_first_run(scheduler, session, pool)
        queued = [pool.submit(predict, scheduler, session, float(i)) for i in range(2)]
        wait_until(lambda: scheduler.status().waiting == 2)
        with pytest.raises(Overloaded) as refused:
            scheduler.submit(KEY, image(9.0))
        session.release.set()
        assert [future.result().batch_size for future in queued] == [2, 2]
        first.result()
    assert (refused.value.http_status, refused.value.code) == (503, "overloaded")
    assert refused.value.retry_after_s == 30  # whole seconds, rounded up
    assert predict(scheduler, session, 4.0).outputs[0][0, 0] == 4.0


def test_requests_still_being_prepared_count_against_the_queue(
    make_scheduler: Callable[..., BatchScheduler],
) -> None:
    def announce(key: BatchKey) -> None:
        with scheduler.arriving(key):
            pass  # a request that would decode here

    scheduler = make_scheduler(queue_max=2)
    with scheduler.arriving(KEY), scheduler.arriving(OTHER), pytest.raises(Overloaded) as full:
        announce(KEY)  # refused before it decodes anything
    assert full.value.retry_after_s == 10
    with scheduler.arriving(KEY) as arrival:
        assert scheduler.result(arrival.submit(image(1.0))).batch_size == 1


def test_a_request_still_queued_at_the_queue_deadline_is_refused(
    make_scheduler: Callable[..., BatchScheduler], session: ScriptedSession
) -> None:
    scheduler = make_scheduler(queue_deadline_s=1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = hold_first_run(scheduler, session, pool)  # in flight: not subject to it
        with pytest.raises(Overloaded) as refused:
            predict(scheduler, session, 1.0)
        assert scheduler.status().waiting == 0
        session.release.set()
        assert first.result().outputs[0][0, 0] == -1.0
    assert refused.value.retry_after_s == 1
    assert "inference queue" in refused.value.reason
    assert session.batches == [1]  # the refused request never ran


def test_a_run_past_the_inference_deadline_is_cancelled_and_the_next_one_runs(
    make_scheduler: Callable[..., BatchScheduler],
    session: ScriptedSession,
    hung: list[SessionKey],
) -> None:
    scheduler = make_scheduler(inference_deadline_s=1)
    session.actions.append("stall")
    with pytest.raises(InferenceTimeout) as timed_out:
        predict(scheduler, session, 1.0)
    assert (timed_out.value.http_status, timed_out.value.retry_after_s) == (503, 1)
    assert session.run_options[0].terminate is True  # ORT was told to stop
    assert hung == [KEY.session]
    # The stalled run still blocks the old worker; a new one serves the queue meanwhile.
    assert predict(scheduler, session, 2.0).outputs[0][0, 0] == 2.0
    session.unstall.set()
    assert predict(scheduler, session, 3.0).outputs[0][0, 0] == 3.0
    assert session.batches == [1, 1, 1]


def test_every_request_of_a_hung_batch_gets_the_timeout(
    make_scheduler: Callable[..., BatchScheduler], session: ScriptedSession
) -> None:
    scheduler = make_scheduler(batch_wait_s=60, inference_deadline_s=1)
    session.actions.append("stall")
    with scheduler.arriving(KEY) as a, scheduler.arriving(KEY) as b, scheduler.arriving(KEY) as c:
        jobs = [arrival.submit(image(1.0)) for arrival in (a, b, c)]
    for job in jobs:
        with pytest.raises(InferenceTimeout):
            scheduler.result(job)
    assert session.batches == [3]


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("raise", "the inference run failed: injected failure"),
        ("nan", "the model returned NaN or infinity"),
        ("wrong rows", "the inference run failed: an output of shape (1, 1) for a batch of 2"),
    ],
)
def test_a_failed_run_answers_with_an_error_and_the_next_run_is_normal(
    make_scheduler: Callable[..., BatchScheduler],
    session: ScriptedSession,
    hung: list[SessionKey],
    action: str,
    reason: str,
) -> None:
    scheduler = make_scheduler(batch_wait_s=60)
    session.actions.append(action)
    with scheduler.arriving(KEY) as one, scheduler.arriving(KEY) as two:
        jobs = [one.submit(image(1.0)), two.submit(image(2.0))]
    with pytest.raises(InferenceFailed) as failed:
        scheduler.result(jobs[0])
    assert (failed.value.http_status, failed.value.reason) == (500, reason)
    if action == "nan":  # only the image whose output is NaN fails
        assert scheduler.result(jobs[1]).outputs[0][0, 0] == 2.0
    else:
        with pytest.raises(InferenceFailed):
            scheduler.result(jobs[1])
    assert predict(scheduler, session, 3.0).outputs[0][0, 0] == 3.0
    assert hung == []  # the session stays


def test_answers_say_how_long_they_queued_and_ran(
    make_scheduler: Callable[..., BatchScheduler], session: ScriptedSession
) -> None:
    scheduler = make_scheduler()
    answer = predict(scheduler, session, 1.0)
    assert answer.queue_ms >= 0
    assert answer.run_ms > 0
    assert (answer.provider, answer.batch_size) == ("ScriptedProvider", 1)
    assert session.outputs_asked == [["logits"]]


def test_closing_refuses_what_still_waits(
    make_scheduler: Callable[..., BatchScheduler], session: ScriptedSession
) -> None:
    scheduler = make_scheduler()
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = hold_first_run(scheduler, session, pool)
        waiting = pool.submit(predict, scheduler, session, 1.0)
        wait_until(lambda: scheduler.status().waiting == 1)
        scheduler.close()
        with pytest.raises(Overloaded):
            waiting.result()
        session.release.set()
        assert first.result().outputs[0][0, 0] == -1.0  # the run in flight finishes
    with pytest.raises(Overloaded):
        scheduler.submit(KEY, image(2.0))


def test_the_worker_asks_the_store_for_each_batchs_session(
    make_scheduler: Callable[..., BatchScheduler], store: ScriptedStore
) -> None:
    scheduler = make_scheduler()
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [
            pool.submit(lambda: scheduler.result(scheduler.submit(KEY, image(1.0))))
            for _ in range(3)
        ]
        assert all(future.result().outputs[0][0, 0] == 1.0 for future in futures)
    assert store.asked_in
    assert all(name.startswith("inference-worker") for name in store.asked_in)


@pytest.mark.parametrize(
    ("failure", "expected", "reason"),
    [
        (ModelUnavailable("net", "1/model.onnx is missing"), ModelUnavailable, "is missing"),
        (MemoryError("bad allocation"), InferenceFailed, "loading the model failed: bad alloc"),
    ],
    ids=["unavailable", "unexpected"],
)
def test_a_model_that_fails_to_open_answers_its_batch_and_the_queue_moves_on(
    make_scheduler: Callable[..., BatchScheduler],
    session: ScriptedSession,
    store: ScriptedStore,
    failure: Exception,
    expected: type[Exception],
    reason: str,
) -> None:
    store.failure = failure
    scheduler = make_scheduler(batch_wait_s=60)
    with scheduler.arriving(KEY) as one, scheduler.arriving(KEY) as two:
        jobs = [one.submit(image(1.0)), two.submit(image(2.0))]
    errors = []
    for job in jobs:
        with pytest.raises(expected) as caught:
            scheduler.result(job)
        errors.append(caught.value)
    assert all(reason in str(error) for error in errors)
    assert errors[0] is not errors[1]  # each request thread raises its own copy
    assert session.batches == []
    store.failure = None
    assert predict(scheduler, session, 3.0).outputs[0][0, 0] == 3.0
