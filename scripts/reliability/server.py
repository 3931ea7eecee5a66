"""The server as production runs it (scripts/liveserver.py), on a model repository of the
reliability run's, its warnings silenced: the scenarios provoke them by design."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.liveserver import ROOT, LiveServer, Sampler, server_env, stop, wait_verified
from scripts.liveserver import start as start_live

__all__ = ["MIB", "ROOT", "Sampler", "Server", "serving", "start", "stop"]

MIB = 1024 * 1024
Server = LiveServer


def start(models_root: Path, extra_env: dict[str, str] | None = None) -> Server:
    """Ready, and done verifying its model files (so no scenario shares the CPU with that)."""
    live = start_live(server_env(models_root, extra_env), stderr=subprocess.DEVNULL)
    wait_verified(live)
    return live


@contextmanager
def serving(models_root: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    live = start(models_root, extra_env)
    try:
        yield live
    finally:
        stop(live)
