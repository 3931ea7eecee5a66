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

    # Model repository build: where checkpoints are cached (None: torch hub's checkpoints folder,
    # where torchvision keeps the same files) and how long a download may stall.
    weights_dir: Path | None = None
    download_timeout_s: float = Field(default=30.0, gt=0)
    # The server starts `convatlas models build` in the background (quick when all is built).
    build_on_start: bool = True

    # Uploaded images: decoded only up to this many pixels (a decompression bomb is refused).
    max_image_pixels: int = Field(default=50_000_000, ge=1)
    # Feature maps: the most active channels shown per layer, each at most this many pixels a side.
    feature_maps_top_k: int = Field(default=6, ge=1, le=16)
    feature_map_side: int = Field(default=32, ge=4, le=64)

    # Web pages: the repository's templates/ and static/ unless set (e.g. for a packaged install).
    templates_dir: Path = Path(__file__).resolve().parent.parent / "templates"
    static_dir: Path = Path(__file__).resolve().parent.parent / "static"
    # How long browsers keep a content-hashed static file; its URL changes whenever it does.
    static_max_age: int = Field(default=365 * 24 * 3600, ge=0)

    # A user's spec (POST /api/analyze), e.g. CONVATLAS_SPEC_LIMITS__MAX_LAYERS=64.
    spec_limits: SpecLimits = SpecLimits()


@cache
def get_settings() -> Settings:
    return Settings()
