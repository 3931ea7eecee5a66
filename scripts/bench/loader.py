"""A child process that loads nets into one InferenceService, one per line of stdin.

    python -m scripts.bench.loader MODELS_ROOT
    stdin:  a net id per line
    stdout: {"net": ..., "load_s": ..., "rss": ...} per line ("rss" after the load, in bytes);
            first a line {"net": null, "load_s": 0, "rss": ...} with nothing loaded

Its model cache has no budget to speak of, so every net stays loaded: the last line's RSS is the
process with every model in memory.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from app.inference.service import InferenceService
from app.settings import Settings
from scripts.bench.common import rss_bytes, service_session

NO_BUDGET = 1 << 40


def main() -> int:
    root = Path(sys.argv[1])
    settings = Settings(
        models_dir=root, build_on_start=False, providers="cpu", model_cache_bytes=NO_BUDGET
    )
    service = InferenceService(settings)
    service.provider()
    _say(None, 0.0)
    for line in sys.stdin:
        net = line.strip()
        if not net:
            continue
        manifest = service.manifest(net)
        started = time.perf_counter()
        service_session(service, manifest, "model")
        _say(net, time.perf_counter() - started)
    return 0


def _say(net: str | None, load_s: float) -> None:
    rss = rss_bytes(os.getpid()) or 0
    print(json.dumps({"net": net, "load_s": load_s, "rss": rss}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
