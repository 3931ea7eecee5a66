"""The server as `make run` starts it (scripts/liveserver.py), on the bench's model repository,
and its memory over time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.liveserver import LiveServer, Sampler, server_env, serving, wait_verified

__all__ = ["RssSampler", "Server", "serve"]

Server = LiveServer


class RssSampler(Sampler):
    """The server's RSS (and file descriptors) every 50 ms while the block runs."""

    def __init__(self, server: Server) -> None:
        super().__init__(server, every_s=0.05)

    @property
    def samples(self) -> list[int]:
        return self.rss

    @property
    def peak(self) -> int:
        return self.peak_rss


@contextmanager
def serve(models_root: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """No background build, CPU only, the model files verified, until the block ends (then
    SIGTERM)."""
    with serving(server_env(models_root, extra_env)) as server:
        wait_verified(server)
        yield server
