"""The one place configuration lives. Every field can be set from the environment, e.g.
``CONVATLAS_MODELS_DIR=/srv/models``. Limits are enforced before any work is done.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.limits import SpecLimits

MIB = 1024 * 1024
GIB = 1024 * MIB


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONVATLAS_", env_nested_delimiter="__", frozen=True
    )

    # Where `convatlas models build` writes and the server reads: a Triton model repository.
    models_dir: Path = Path("models")

    # Inference.
    providers: Literal["auto", "cpu", "cuda"] = "auto"
    model_cache_bytes: int = Field(default=2 * GIB, ge=0)

    # Request bodies (bytes): larger ones get 413 as soon as the limit is crossed.
    max_body_predict: int = Field(default=10 * MIB, ge=1)
    max_body_analyze: int = Field(default=256 * 1024, ge=1)
    max_body_default: int = Field(default=1 * MIB, ge=1)

    # A user's spec (POST /api/analyze), e.g. CONVATLAS_SPEC_LIMITS__MAX_LAYERS=64.
    spec_limits: SpecLimits = SpecLimits()


@cache
def get_settings() -> Settings:
    return Settings()
