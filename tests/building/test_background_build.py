"""The server's real background build (CONVATLAS_BUILD_ON_START): started with the server on an
empty repository, it builds the smallest net first, which then predicts."""

import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from app.building.background import smallest_first
from app.settings import Settings
from app.web.app import create_app


def poll(check: Callable[[], bool], give_up_s: float = 900) -> None:
    """Poll ``check()`` until true: a wait for state, never a timing assertion."""
    give_up = time.monotonic() + give_up_s
    while not check():
        assert time.monotonic() < give_up, "the build never made the net available"
        time.sleep(0.2)


def test_the_background_build_makes_the_smallest_net_available_first(
    tmp_path: Path, photo_jpeg: bytes
) -> None:
    smallest = smallest_first()[0]
    settings = Settings(models_dir=tmp_path / "models", providers="cpu", build_on_start=True)
    with TestClient(create_app(settings)) as client:

        def nets() -> dict[str, bool]:
            models = client.get("/readyz").json()["inference"]["models"]
            return {model["id"]: model["available"] for model in models}

        assert not any(nets().values())  # an empty repository: nothing to serve yet
        poll(lambda: nets()[smallest])
        upload = {"image": ("photo.jpg", photo_jpeg, "image/jpeg")}
        response = client.post(f"/api/predict/{smallest}", files=upload)
        assert response.status_code == 200, response.text
        assert response.json()["weights"] == "untrained"  # offline here: seeded random weights
    assert (tmp_path / "models" / "build.log").stat().st_size > 0
