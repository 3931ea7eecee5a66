"""API and page tests through Starlette's TestClient (lifespan included, so tables are warm).

State is per test: the environment that Settings() reads is patched for each test and put back
after it, and the apps shared across tests (``client``, ``predict_client``) are built from
explicit Settings, so they depend on no test's environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings, get_settings
from app.web.app import create_app


@pytest.fixture(scope="session")
def empty_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository with nothing built."""
    return tmp_path_factory.mktemp("no-models")


@pytest.fixture(scope="session")
def web_settings(empty_models: Path) -> Settings:
    """What the tests' apps run on unless a test says otherwise: no background build, the empty
    repository, the CPU."""
    return Settings(models_dir=empty_models, build_on_start=False, providers="cpu")


@pytest.fixture(autouse=True)
def _no_background_build(empty_models: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings() from the environment, as an app a test creates without settings reads it,
    says the same as ``web_settings``, for this test only."""
    monkeypatch.setenv("CONVATLAS_BUILD_ON_START", "0")
    monkeypatch.setenv("CONVATLAS_PROVIDERS", "cpu")
    monkeypatch.setenv("CONVATLAS_MODELS_DIR", str(empty_models))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def client(web_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(web_settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def predict_settings(models_root: Path) -> Settings:
    """The app's settings over the shared repository (alexnet-lecture and zfnet-lecture)."""
    return Settings(models_dir=models_root, build_on_start=False, providers="cpu")


@pytest.fixture(scope="session")
def predict_client(predict_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(predict_settings)) as test_client:
        yield test_client
