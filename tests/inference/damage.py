"""Ways to damage, and to rebuild, a net in a test repository whose files are hard links to the
shared one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MODEL, FEATURES, MANIFEST = "1/model.onnx", "features.onnx", "manifest.json"


def private_copy(path: Path) -> None:
    """Make ``path`` a file of its own (a new inode), safe to change in place."""
    copy = path.with_name(path.name + ".copy")
    shutil.copyfile(path, copy)
    os.replace(copy, path)


def flip_bytes_in_the_middle(path: Path) -> None:
    """The same size, other bytes: only the sha256 can tell."""
    private_copy(path)
    flip_in_place(path)


def flip_in_place(path: Path) -> None:
    """Flip 64 bytes in the middle of ``path`` itself (its own file: see private_copy)."""
    with path.open("r+b") as file:
        file.seek(path.stat().st_size // 2)
        data = file.read(64)
        file.seek(-len(data), os.SEEK_CUR)
        file.write(bytes(255 - byte for byte in data))


def rebuild(root: Path, models_root: Path, net: str) -> None:
    """What `convatlas models build` leaves: every file renamed into place, the manifest last."""
    for name in (MODEL, FEATURES, MANIFEST):
        target = root / net / name
        temporary = target.with_name(target.name + ".tmp")
        shutil.copyfile(models_root / net / name, temporary)
        os.replace(temporary, target)
