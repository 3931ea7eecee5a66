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
PACKAGE_DIR = Path(__file__).resolve().parent


def site_dir(name: str) -> Path:
    """templates/ or static/: inside the package where a wheel installed them (app/<name>),
    else at the top of the repository this package sits in (a clone, an editable install)."""
    packaged = PACKAGE_DIR / name
    return packaged if packaged.is_dir() else PACKAGE_DIR.parent / name


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
    # The request line and headers together (bytes); larger get 431. The HTTP parser sets none.
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    # A connection the server closes while the client still sends (after a 413, say) is read and
    # dropped for at most this long first, so the client reads its answer instead of a reset.
    linger_s: float = Field(default=2.0, ge=0)
    # The request line and headers must arrive within this, counted from the connection's opening
    # or the request's first byte: a client dribbling its headers gets 408, a connection that
    # sends nothing is closed. Idle time between keep-alive requests is not counted.
    head_timeout_s: float = Field(default=20.0, gt=0)

    # Model repository build: where checkpoints are cached (None: torch hub's checkpoints folder,
    # where torchvision keeps the same files) and how long a download may stall.
    weights_dir: Path | None = None
    download_timeout_s: float = Field(default=30.0, gt=0)
    # The server starts `convatlas models build` in the background (quick when all is built).
    build_on_start: bool = True

    # Uploaded images: decoded only up to this many pixels (a decompression bomb is refused).
    max_image_pixels: int = Field(default=50_000_000, ge=1)
    # Memory for decoding one picture, estimated from its header before decoding
    # (app/inference/decode_budget.py): over it, the picture is reduced while it is converted
    # where that brings it under, else refused (413). Every decode in progress shares
    # decode_memory_bytes, its worker's own memory included (56 MiB a worker: 24 of them fit);
    # one that does not fit waits up to decode_wait_s, then gets 503.
    decode_budget_bytes: int = Field(default=160 * MIB, ge=MIB)
    decode_memory_bytes: int = Field(default=3 * GIB // 2, ge=MIB)
    decode_wait_s: float = Field(default=5.0, gt=0)
    # Each upload is decoded in a worker process (app/inference/decoding.py), killed once it has
    # used decode_deadline_s of CPU time, or three times that in wall time on a machine too busy
    # to give it the CPU: the upload gets 422 decode_timeout. At most decode_workers decode at
    # once (one per upload; max_concurrent_uploads bounds those too); an upload finding all
    # busy waits up to decode_wait_s, then gets 503.
    decode_deadline_s: float = Field(default=5.0, gt=0)
    decode_workers: int = Field(default=24, ge=1)
    # Feature maps: the most active channels shown per layer, each at most this many pixels a side.
    feature_maps_top_k: int = Field(default=6, ge=1, le=16)
    feature_map_side: int = Field(default=32, ge=4, le=64)

    # Web pages: the installed package's templates/ and static/, or the repository's (site_dir).
    templates_dir: Path = Field(default_factory=lambda: site_dir("templates"))
    static_dir: Path = Field(default_factory=lambda: site_dir("static"))
    # How long browsers keep a content-hashed static file; its URL changes whenever it does.
    static_max_age: int = Field(default=365 * 24 * 3600, ge=0)

    # A user's spec (POST /api/analyze), e.g. CONVATLAS_SPEC_LIMITS__MAX_LAYERS=64.
    spec_limits: SpecLimits = SpecLimits()
    # Recent users' tables are kept for the editor, which re-sends unchanged specs: at most this
    # many bytes in all (key and answer JSON), however large each table is.
    analyze_cache_bytes: int = Field(default=16 * MIB, ge=0)

    # Dynamic batching (docs/inference.md): concurrent requests for one net share one ONNX Runtime
    # run of at most batch_max images. The worker waits at most batch_wait_ms after the oldest
    # waiting request for more, and only while more are on their way (decoding), so a lone
    # request never waits.
    batch_max: int = Field(default=8, ge=1, le=64)
    batch_wait_ms: float = Field(default=5.0, ge=0, le=1000)
    # Overload: at most queue_max images wait behind the one batch in flight; a request that
    # finds the queue full, or is still waiting after queue_deadline_s, gets 503 + Retry-After.
    queue_max: int = Field(default=32, ge=1)
    queue_deadline_s: float = Field(default=10.0, gt=0)
    # Loading is not queueing: a request for a net whose session is loading waits for the load
    # up to this long, apart from the queue deadline; then 503 model_loading + Retry-After.
    load_deadline_s: float = Field(default=30.0, gt=0)
    # A run still going after this long is cancelled: its requests get an error, its session is
    # dropped (the next request loads a fresh one) and a new worker takes over the queue.
    inference_deadline_s: float = Field(default=30.0, gt=0)
    # ONNX Runtime threads per run: None means every core this process may use. Spinning (busy
    # waiting for work) stays off because the server shares its cores with decoding and the web.
    intra_op_threads: int | None = Field(default=None, ge=1)
    ort_spinning: bool = False
    # Uploads longer than this many times their width (or wider than tall) are refused: resizing
    # the short side to 256 would make a huge strip of them.
    max_image_aspect: float = Field(default=20.0, ge=1)

    # Hardening (docs/reliability.md). A request body that takes longer than this to arrive, from
    # its headers to its last byte, gets 408: a slow client cannot hold a connection for ever.
    # 60 s lets a 10 MiB upload arrive at about 1.4 Mbit/s, a crowded classroom Wi-Fi.
    body_timeout_s: float = Field(default=60.0, gt=0)
    # A multipart upload holds one file (the part named `image`; any other part with a
    # filename counts as a file too) and a few small fields, each read no further than this.
    max_upload_files: int = Field(default=1, ge=1)
    max_form_fields: int = Field(default=4, ge=0)
    max_form_field_bytes: int = Field(default=16 * 1024, ge=1)
    # At most this many uploads (POST /api/predict*) are handled at once; more get 503 with
    # Retry-After at once. Each holds a worker thread while it decodes and waits for its batch,
    # and the threadpool has 40: the rest stay free for the pages, the tables and the probes.
    max_concurrent_uploads: int = Field(default=24, ge=1)
    # After SIGTERM (or Ctrl-C) new requests get 503 and those in flight get this long to
    # finish; any still without an answer then gets 503 with Retry-After. Keep it a few seconds
    # under the supervisor's own grace period (`docker stop` waits 10 s, Kubernetes 30 s).
    shutdown_grace_s: float = Field(default=8.0, gt=0)

    # Where inference runs (docs/scale-out.md): "local", in this process (the scheduler above),
    # or "ray", on the Ray Serve cluster at ray_address that `convatlas cluster deploy` set up.
    # With "ray" this process only decodes and preprocesses; the nets run on the cluster.
    inference_backend: Literal["local", "ray"] = "local"
    # The cluster: "auto" where a Ray node runs on this machine (`ray start --address=HEAD:6379
    # --num-cpus=0` beside a web process), or the head's GCS address, host:port, from the head's
    # own machine. None means "auto" for `convatlas cluster`; the ray backend requires it set.
    ray_address: str | None = None
    ray_namespace: str = "convatlas"
    ray_app_name: str = "convatlas"  # the Serve application `convatlas cluster deploy` runs
    # Each net's deployment: Serve's autoscaler keeps between min and max replicas, aiming at
    # this many requests in flight per replica; it adds one after upscale_delay_s of more and
    # removes one after downscale_delay_s of less, "in flight" being the average over the last
    # look_back_s (Serve's look_back_period_s). Each replica reserves these resources; set
    # cluster_replica_gpus to 1 (or 0.5 to share a GPU) where the workers have GPUs.
    cluster_min_replicas: int = Field(default=1, ge=0)
    cluster_max_replicas: int = Field(default=2, ge=1)
    cluster_target_ongoing_requests: float = Field(default=4.0, gt=0)
    cluster_upscale_delay_s: float = Field(default=10.0, ge=0)
    cluster_downscale_delay_s: float = Field(default=120.0, ge=0)
    # More than Serve's metrics interval (10 s), which it requires of the look-back.
    cluster_look_back_s: float = Field(default=30.0, gt=10)
    cluster_replica_cpus: float = Field(default=1.0, ge=0)
    cluster_replica_gpus: float = Field(default=0.0, ge=0)
    # A request the cluster has not answered within this long gets 503 + Retry-After (a replica
    # that is starting loads its net first); unavailable answers carry this Retry-After.
    cluster_request_timeout_s: float = Field(default=30.0, gt=0)
    cluster_retry_after_s: int = Field(default=5, ge=1)


@cache
def get_settings() -> Settings:
    return Settings()
