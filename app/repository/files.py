"""Writing the repository so that readers see a net complete or not at all, and can read it.

A net is built in a staging folder beside its final one (models/.<id>.<random>.staging) and
renamed into place once every file is there; a killed build leaves only a staging folder, which
no reader takes for a net, and the next build sweeps it (holding the build lock, so none is in
use). Every file is 0644 and every folder 0755: a Triton or a host user that is not the one who
built can read what a container wrote.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from app.repository.layout import RETIRED_SUFFIX, STAGING_SUFFIX

FILE_MODE = 0o644
DIR_MODE = 0o755


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` under a temporary name beside it, then rename it into place (0644)."""
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".partial", dir=path.parent
    )
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        temp.chmod(FILE_MODE)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


@contextlib.contextmanager
def staging(root: Path, model_id: str) -> Iterator[Path]:
    """A fresh folder to build ``model_id`` in; removed afterwards unless published."""
    folder = Path(tempfile.mkdtemp(prefix=f".{model_id}.", suffix=STAGING_SUFFIX, dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish(folder: Path, target: Path) -> None:
    """Make the staged ``folder`` the net's folder ``target``, readable by all: the old one is
    renamed aside and removed, so a reader sees the old net, briefly none, then the new one."""
    readable(folder)
    retired = None
    if target.exists():
        retired = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=RETIRED_SUFFIX, dir=target.parent)
        )
        os.replace(target, retired / target.name)
    os.replace(folder, target)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def readable(folder: Path) -> None:
    """Files 0644 and folders 0755, ``folder`` included."""
    folder.chmod(DIR_MODE)
    for path in folder.rglob("*"):
        path.chmod(DIR_MODE if path.is_dir() else FILE_MODE)


def sweep(root: Path) -> list[Path]:
    """Remove what killed builds left (staging and retired folders); only while holding the
    build lock, when no build can be using them. Returns what was removed."""
    removed = []
    for suffix in (STAGING_SUFFIX, RETIRED_SUFFIX):
        for path in root.glob(f".*{suffix}"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed
