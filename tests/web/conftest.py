"""API and page tests through Starlette's TestClient (lifespan included, so tables are warm)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings, get_settings
from app.web.app import create_app


@pytest.fixture(scope="session", autouse=True)
def _no_background_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every app these tests start, with Settings() from the environment included, builds
    nothing and reads an empty model repository on the CPU, unless a test says otherwise."""
    empty = tmp_path_factory.mktemp("no-models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVATLAS_BUILD_ON_START", "0")
        patch.setenv("CONVATLAS_PROVIDERS", "cpu")
        patch.setenv("CONVATLAS_MODELS_DIR", str(empty))
        get_settings.cache_clear()
        yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def predict_settings(models_root: Path) -> Settings:
    """The app's settings over the shared repository (alexnet-lecture and zfnet-lecture)."""
    return Settings(models_dir=models_root, build_on_start=False, providers="cpu")


@pytest.fixture(scope="session")
def predict_client(predict_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(predict_settings)) as test_client:
        yield test_client
