"""Loading is not queueing: a request for a net whose session is loading waits for the load
within its own deadline (Settings.load_deadline_s), apart from the queue deadline, and past it
gets ModelLoading (503 model_loading, Retry-After); the load goes on and the next request runs."""

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.inference.errors import ModelLoading
from app.inference.service import InferenceService
from app.inference.sessions import OrtSession, ort_session

NET = "alexnet-lecture"


class SlowOpen:
    """An ``open_session`` that holds each load until ``release`` is set."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, path: Path, providers: list[str], options: Any) -> OrtSession:
        self.started.set()
        assert self.release.wait(timeout=120)
        return ort_session(path, providers, options)


def test_a_load_past_the_load_deadline_is_model_loading_not_overloaded(
    make_service: Callable[..., InferenceService], images: Any
) -> None:
    slow = SlowOpen()
    # A queue deadline far shorter than the load deadline: the wait must not count against it.
    service = make_service(open_session=slow, load_deadline_s=0.5, queue_deadline_s=0.1)
    data = images.encode(images.photo_like(), "PNG")
    try:
        with pytest.raises(ModelLoading) as refused:
            service.predict(NET, data)
        assert slow.started.is_set()
        assert refused.value.http_status == 503
        assert refused.value.code == "model_loading"
        assert refused.value.retry_after_s == 1
        assert "still loading" in str(refused.value)
        assert service.status().queue.waiting == 0  # nothing queued: it waited for the load
    finally:
        slow.release.set()
    answer = service.predict(NET, data)  # the load went on; this request finds it done
    assert len(answer.top5) == 5


def test_a_load_within_the_load_deadline_is_not_a_queue_timeout(
    make_service: Callable[..., InferenceService], images: Any
) -> None:
    """The load takes longer than the whole queue deadline, and the request still succeeds."""
    slow = SlowOpen()
    service = make_service(open_session=slow, load_deadline_s=60, queue_deadline_s=0.2)
    data = images.encode(images.photo_like(), "PNG")
    done = threading.Event()

    def release_once_loading() -> None:
        assert slow.started.wait(timeout=60)
        assert not done.wait(timeout=0.5)  # the request is waiting, past the queue deadline
        slow.release.set()

    thread = threading.Thread(target=release_once_loading)
    thread.start()
    try:
        answer = service.predict(NET, data)
    finally:
        done.set()
        slow.release.set()
        thread.join()
    assert len(answer.top5) == 5
