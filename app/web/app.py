"""create_app(): the FastAPI application, assembled from one router per feature."""

from __future__ import annotations

import gc
import importlib.util
import logging
import subprocess
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from app import __version__ as app_version
from app.building.background import start_background_build
from app.core.timeline import timeline
from app.inference.service import InferenceService
from app.settings import Settings, get_settings
from app.specs import builtin_registry
from app.web.assets import Assets, serve_static
from app.web.caching import VaryOnceMiddleware
from app.web.catalog import ANALYSIS_CACHE, lecture_entries, summaries, table_json
from app.web.encoding import NegotiatedGZipMiddleware
from app.web.errors import declare_common_errors, install_error_handlers
from app.web.head import HeadAsGetMiddleware
from app.web.limits import BodyLimitMiddleware, Drain, DrainMiddleware, UploadAdmissionMiddleware
from app.web.routers import (
    analyze,
    architectures,
    compare,
    design,
    health,
    lecture,
    pages,
    practice,
    predict,
    whatif,
)
from app.web.security import SecuredFastAPI
from app.web.templating import make_templates

log = logging.getLogger(__name__)

# Adding a feature is one line here.
ROUTERS: list[APIRouter] = [
    health.router,
    architectures.router,
    design.router,
    compare.router,
    analyze.router,
    lecture.router,
    predict.router,
    practice.router,
    whatif.router,
    pages.router,
]
# The way back from the API docs to the site, above Swagger UI (which has no header of its own).
DOCS_BACK_LINK = (
    '<body>\n<nav aria-label="ConvAtlas" style="display:flex;flex-wrap:wrap;gap:6px 18px;'
    'align-items:center;padding:10px 20px;background:#0f172a;font:600 15px system-ui,sans-serif">'
    '<a href="/" style="color:#fff;text-decoration:none;display:inline-flex;gap:8px;'
    'align-items:center"><img src="{icon}" alt="" width="22" height="22"> ConvAtlas</a>'
    '<a href="/" style="color:#cbd5e1">Nets</a><a href="/compare" style="color:#cbd5e1">Compare</a>'
    '<a href="/lecture" style="color:#cbd5e1">Lecture check</a></nav>'
)
# /docs groups the operations by these tags, in this order.
TAGS = [
    {"name": "architectures", "description": "The built-in nets: summaries, specs, layer tables."},
    {"name": "compare", "description": "Two built-in nets aligned stage by stage."},
    {
        "name": "analyze",
        "description": "Your own spec: its layer table, or every problem by layer and field.",
    },
    {"name": "lecture", "description": "The lecture's figures beside the exact computation."},
    {
        "name": "predict",
        "description": "Live inference: an uploaded picture's top-5 classes and feature maps.",
    },
    {
        "name": "practice",
        "description": "A student's answer for one layer, checked, and the slip it shows named.",
    },
    {
        "name": "what-if",
        "description": "A net changed in place (pools, conv1, input, FC1), beside the original.",
    },
    {"name": "health", "description": "Liveness and readiness, for probes and load balancers."},
]
DESCRIPTION = (
    "How AlexNet, ZFNet and VGG turn an image into class scores, layer by layer: volumes, "
    "parameters, MACs and receptive fields, computed exactly from each net's spec. Every error "
    'is `{"error": {"code": ..., "message": ..., ...}}`.'
)


def _warm() -> dict[str, Any]:
    """Compute every built-in table (and what is derived from them) before the first request."""
    ids = builtin_registry().ids()
    for net_id in ids:
        table_json(net_id)
    return {
        "nets": len(ids),
        "tables": len(ids),
        "timeline_points": len(timeline().points),
        "lecture_figures": len(lecture_entries()),
        "summaries": len(summaries()),
    }


def operation_id(route: APIRoute) -> str:
    """The route function's name in camelCase (``get_table`` -> ``getTable``): what generated
    clients name their methods, instead of FastAPI's ``get_table_api_architectures__..._get``."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


# Python's default (700 allocations) runs a collection every few requests at full load.
GC_GEN0_THRESHOLD = 5000


def _settle_garbage_collector() -> None:
    """What start-up built (specs, tables, pages, imports) lives as long as the process: frozen,
    the collector no longer walks it, and fewer, smaller collections shorten the slowest answers
    under load (the table API's p99 in docs/benchmarks.md). Cycles are still collected."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


# How long a background build may take to unwind (it removes its temporary files) on shutdown.
BUILD_STOP_TIMEOUT_S = 10.0


def _start_build(settings: Settings) -> subprocess.Popen[bytes] | None:
    """Start the background build first, so its torch start-up overlaps ours; each model is
    served as soon as its manifest lands. A repository the server cannot write (mounted
    read-only, say), or an install without the build extra, is served as it is: the service
    reports what is missing."""
    if settings.build_on_start and importlib.util.find_spec("torch") is None:
        log.warning(
            "not building the models missing from %s: the build needs torch, which this "
            "install lacks (install convatlas[build])",
            settings.models_dir,
        )
        return None
    try:
        return start_background_build(settings)
    except OSError as error:
        log.warning("no background build in %s: %s", settings.models_dir, error)
        return None


def _stop_build(build: subprocess.Popen[bytes] | None) -> None:
    """Stop the background build, if it still runs; a half-built net leaves nothing behind."""
    if build is None or build.poll() is not None:
        return
    build.terminate()
    try:
        build.wait(timeout=BUILD_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        build.kill()
        build.wait()


def _inference_service(settings: Settings) -> InferenceService:
    """Inference in this process (local), or on the Ray Serve cluster
    (CONVATLAS_INFERENCE_BACKEND=ray), whose web tier builds no models: the cluster holds them."""
    if settings.inference_backend == "local":
        return InferenceService(settings)
    from app.cluster.backend import RayBackend  # the cluster extra, only when asked for

    return InferenceService(settings, backend=RayBackend(settings))


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    service = _inference_service(settings)
    app.state.build = None if settings.inference_backend == "ray" else _start_build(settings)
    try:
        # status() chooses the provider now (a CUDA probe takes a moment), not on a request.
        await run_in_threadpool(service.status)
        # The decode worker starts beside the pages' prerendering: a second, off the first upload.
        threading.Thread(target=service.warm, name="convatlas-warm-decoding", daemon=True).start()
        app.state.inference = service
        app.state.loaded = {
            **_warm(),
            "static_files": len(app.state.assets),
            "pages": await pages.prerender(app),  # not even a first visit waits for a render
        }
        _settle_garbage_collector()
        with app.state.drain.on_signals():  # SIGTERM: refuse new requests, bound the others
            yield
    finally:
        gc.unfreeze()  # a process that starts several apps (the tests) lets their cycles go
        await run_in_threadpool(service.close)  # stops its batching worker after the current run
        await run_in_threadpool(_stop_build, app.state.build)


def _docs_route(app: FastAPI, assets: Assets) -> None:
    """Swagger UI from our own static files (no CDN); its inline start-up script is why /docs
    alone has a looser script policy (see security.py)."""

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="ConvAtlas API",
            swagger_js_url=assets.url("vendor/swagger-ui/swagger-ui-bundle.js"),
            swagger_css_url=assets.url("vendor/swagger-ui/swagger-ui.css"),
            swagger_favicon_url=assets.url("img/favicon.svg"),
        )
        html = (
            bytes(page.body)
            .decode("utf-8")
            .replace("<body>", DOCS_BACK_LINK.format(icon=assets.url("img/favicon.svg")), 1)
        )
        return HTMLResponse(html)


def _static_route(app: FastAPI) -> None:
    @app.get("/static/{path:path}", include_in_schema=False)
    async def static(path: str, request: Request) -> Response:  # a lookup: no worker thread
        return serve_static(path, request)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = SecuredFastAPI(
        title="ConvAtlas",
        description=DESCRIPTION,
        version=app_version,
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
        separate_input_output_schemas=False,
        openapi_tags=TAGS,
        generate_unique_id_function=operation_id,
    )
    assets = Assets(settings.static_dir)
    app.state.settings = settings
    ANALYSIS_CACHE.resize(settings.analyze_cache_bytes)
    app.state.assets = assets
    app.state.templates = make_templates(settings.templates_dir, assets)
    app.state.drain = Drain(settings.shutdown_grace_s)
    install_error_handlers(app)
    for router in ROUTERS:
        declare_common_errors(router)
        app.include_router(router)
    _docs_route(app, assets)
    _static_route(app)
    # The last added runs first: HEAD answered as GET, then shutdown, then the body limits
    # (before any route reads a byte), then the bound on concurrent uploads. The security headers
    # sit outside them all, Starlette's own 500s included (SecuredFastAPI).
    app.add_middleware(NegotiatedGZipMiddleware, minimum_size=1024)
    app.add_middleware(VaryOnceMiddleware)  # right outside the gzip: it merges the Vary it adds
    app.add_middleware(UploadAdmissionMiddleware, settings=settings)
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(DrainMiddleware, drain=app.state.drain)
    app.add_middleware(HeadAsGetMiddleware)
    return app
