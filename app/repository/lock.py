"""One build at a time per repository: `convatlas models build` holds models/.build.lock (an
flock) while it writes; readers ask whether it is held to say "a build is running"."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from app.repository.layout import lock_path


@contextlib.contextmanager
def build_lock(root: Path, say: Callable[[str], None]) -> Iterator[None]:
    """Hold the repository's build lock (waiting for another build, after saying so)."""
    with lock_path(root).open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another build of {root} to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_running(root: Path) -> bool:
    """Whether a build holds the repository's build lock right now."""
    try:
        with lock_path(root).open("rb") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
    except FileNotFoundError:
        return False
    return False
