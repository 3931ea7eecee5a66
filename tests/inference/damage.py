"""Ways to damage a model file in a test repository whose files are hard links to the shared one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def private_copy(path: Path) -> None:
    """Make ``path`` a file of its own (a new inode), safe to change in place."""
    copy = path.with_name(path.name + ".copy")
    shutil.copyfile(path, copy)
    os.replace(copy, path)


def flip_bytes_in_the_middle(path: Path) -> None:
    """The same size, other bytes: only the sha256 can tell."""
    private_copy(path)
    with path.open("r+b") as file:
        file.seek(path.stat().st_size // 2)
        data = file.read(64)
        file.seek(-len(data), os.SEEK_CUR)
        file.write(bytes(255 - byte for byte in data))
