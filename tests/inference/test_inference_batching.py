"""Dynamic batching and run faults through the service, on real ONNX Runtime sessions.

The sessions come through the service's ``open_session`` seam (conftest.Faults): each run's batch
size is recorded, and a test can hold a run open to fill the queue deterministically, or make a
run stall, raise or return NaN. No assertion depends on how fast anything runs.
"""

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from app.inference.errors import InferenceFailed, InferenceTimeout, Overloaded
from app.inference.providers import CPU
from app.inference.results import PredictResult
from app.inference.service import InferenceService

NET = "alexnet-lecture"
HUNG_RUN_DEADLINE_S = 15


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll until ``condition`` holds: a wait for state, never a timing assertion."""
    give_up = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < give_up, "the service never reached the expected state"
        time.sleep(0.005)


def uploads(images: Any, count: int) -> list[bytes]:
    """Different pictures, so a result in the wrong slot would show."""
    return [
        images.encode(images.photo_like(200 + 17 * i, 180 + 11 * i), "PNG") for i in range(count)
    ]


def hold_a_run(
    service: InferenceService, faults: Any, pool: ThreadPoolExecutor, data: bytes
) -> Future[PredictResult]:
    """A prediction whose run stays open until ``faults.release`` is set."""
    faults.actions.append("hold")
    held = pool.submit(service.predict, NET, data)
    assert faults.holding.wait(timeout=60)
    return held


def test_concurrent_predictions_share_one_run_and_match_unbatched_ones(
    make_service: Callable[..., InferenceService], faults: Any, images: Any
) -> None:
    service = make_service(open_session=faults)
    pictures = uploads(images, 8)
    alone = [service.predict(NET, data) for data in pictures]  # one run each
    faults.batches.clear()
    with ThreadPoolExecutor(max_workers=9) as pool:
        held = hold_a_run(service, faults, pool, pictures[0])
        futures = [pool.submit(service.predict, NET, data) for data in pictures]
        wait_until(lambda: service.status().queue.waiting == 8)
        assert service.status().queue.in_flight == 1
        faults.release.set()
        batched = [future.result() for future in futures]
        held.result()
    assert faults.batches == [1, 8]
    assert [result.top5 for result in batched] == [result.top5 for result in alone]
    assert all(result.provider == CPU for result in batched)
    assert service.status().queue.waiting == 0


def test_feature_maps_queue_too_but_run_one_image_at_a_time(
    make_service: Callable[..., InferenceService], faults: Any, images: Any
) -> None:
    service = make_service(open_session=faults)
    pictures = uploads(images, 2)
    alone = [service.feature_maps(NET, data).layers for data in pictures]
    faults.batches.clear()
    with ThreadPoolExecutor(max_workers=3) as pool:
        faults.actions.append("hold")
        held = pool.submit(service.feature_maps, NET, pictures[0])
        assert faults.holding.wait(timeout=60)
        futures = [pool.submit(service.feature_maps, NET, data) for data in pictures]
        wait_until(lambda: service.status().queue.waiting == 2)
        faults.release.set()
        queued = [future.result().layers for future in futures]
        held.result()
    assert faults.batches == [1, 1, 1]
    assert queued == alone


def test_a_full_queue_answers_503_with_retry_after_and_then_serves_again(
    make_service: Callable[..., InferenceService], faults: Any, images: Any
) -> None:
    service = make_service(open_session=faults, queue_max=1, queue_deadline_s=30)
    data = uploads(images, 1)[0]
    with ThreadPoolExecutor(max_workers=2) as pool:
        held = hold_a_run(service, faults, pool, data)
        queued = pool.submit(service.predict, NET, data)
        wait_until(lambda: service.status().queue.waiting == 1)
        with pytest.raises(Overloaded) as refused:
            service.predict(NET, data)
        faults.release.set()
        held.result()
        queued.result()
    assert (refused.value.http_status, refused.value.retry_after_s) == (503, 30)
    assert service.predict(NET, data).top5 == queued.result().top5


def test_a_hung_run_gets_an_error_and_the_next_request_a_fresh_session(
    make_service: Callable[..., InferenceService], faults: Any, images: Any
) -> None:
    # Waiting out the deadline is the point: generous, so that the real runs before and after
    # the stalled one (about 50 ms each here) finish inside it on any loaded machine.
    service = make_service(open_session=faults, inference_deadline_s=HUNG_RUN_DEADLINE_S)
    data = uploads(images, 1)[0]
    expected = service.predict(NET, data).top5
    faults.actions.append("stall")
    with pytest.raises(InferenceTimeout) as timed_out:
        service.predict(NET, data)
    assert (timed_out.value.http_status, timed_out.value.retry_after_s) == (503, 1)
    assert service.predict(NET, data).top5 == expected
    assert faults.opened == ["model.onnx", "model.onnx"]  # the hung session was replaced


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("raise", "the inference run failed: injected failure"),
        ("nan", "the model returned NaN or infinity"),
    ],
)
def test_a_run_that_raises_or_returns_nan_gets_an_error_and_the_next_succeeds(
    make_service: Callable[..., InferenceService],
    faults: Any,
    images: Any,
    action: str,
    reason: str,
) -> None:
    service = make_service(open_session=faults)
    data = uploads(images, 1)[0]
    expected = service.predict(NET, data).top5
    faults.actions.append(action)
    with pytest.raises(InferenceFailed) as failed:
        service.predict(NET, data)
    assert (failed.value.http_status, failed.value.reason) == (500, reason)
    assert service.predict(NET, data).top5 == expected
    assert faults.opened == ["model.onnx"]  # the session stays


def test_the_status_reports_the_queue(make_service: Callable[..., InferenceService]) -> None:
    queue = make_service(queue_max=5, batch_max=4).status().queue
    assert (queue.waiting, queue.queue_max, queue.in_flight, queue.batch_max) == (0, 5, 0, 4)
