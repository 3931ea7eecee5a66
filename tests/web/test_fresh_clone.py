"""The fresh-clone case: `make run` builds every net in the background, and a VGG that is built
already answers its first upload with 200 while that build keeps the CPU busy (loading is not
queueing; the build runs at the lowest CPU and I/O priority)."""

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.building.build import build_models
from app.settings import Settings
from app.web.app import create_app

VGG = "vgg11"  # the smallest VGG; its file is about 0.5 GB, like every VGG's


def poll(check: Callable[[], bool], give_up_s: float = 600) -> None:
    """Poll ``check()`` until true: a wait for state, never a timing assertion."""
    give_up = time.monotonic() + give_up_s
    while not check():
        assert time.monotonic() < give_up, "the server never reached the expected state"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def vgg_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fresh-clone") / "models"
    [outcome] = build_models([VGG], untrained=True, root=root, say=lambda _: None)
    assert outcome.status == "built", outcome
    return root


def test_a_built_vgg_predicts_while_the_background_build_runs(
    vgg_built: Path, photo_jpeg: bytes
) -> None:
    settings = Settings(models_dir=vgg_built, providers="cpu", build_on_start=True)
    with TestClient(create_app(settings)) as client:

        def building() -> bool:
            return bool(client.get("/readyz").json()["inference"]["build_running"])

        poll(building)  # the background build holds the lock: other nets are being built
        upload = {"image": ("photo.jpg", photo_jpeg, "image/jpeg")}
        response = client.post(f"/api/predict/{VGG}", files=upload)
        assert response.status_code == 200, response.text
        assert len(response.json()["top5"]) == 5
        assert building()  # still building: the answer came during the build
