"""A build killed mid-way leaves no net folder a reader or Triton would load, and the next build
sweeps what it left; a finished net's folder is readable by everyone."""

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.building.build import build_models
from app.repository.layout import STAGING_SUFFIX
from app.repository.manifest import ManifestError, read_manifest

REPO = Path(__file__).resolve().parents[2]


def staged(root: Path) -> list[Path]:
    return sorted(root.glob(f".*{STAGING_SUFFIX}"))


def poll(check: Callable[[], bool], give_up_s: float = 600) -> None:
    """Poll ``check()`` until true: a wait for state, never a timing assertion."""
    give_up = time.monotonic() + give_up_s
    while not check():
        assert time.monotonic() < give_up, "the build never reached the expected state"
        time.sleep(0.05)


@pytest.fixture
def killed_vgg13(tmp_path: Path) -> Path:
    """`convatlas models build vgg13 --untrained`, killed (SIGKILL: no clean-up runs) once it
    writes the exported model."""
    root = tmp_path / "models"
    command = [sys.executable, "-m", "app.cli", "models", "build", "vgg13", "--untrained"]
    build = subprocess.Popen(
        [*command, "--root", str(root)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def writing() -> bool:
            assert build.poll() is None, "the build ended before it could be killed"
            return any(
                path.is_file() and path.stat().st_size > 0
                for folder in staged(root)
                for path in folder.iterdir()
            )

        poll(writing)
    finally:
        build.send_signal(signal.SIGKILL)
        build.wait()
    return root


def test_a_killed_build_leaves_no_net_folder_and_the_next_build_sweeps(killed_vgg13: Path) -> None:
    root = killed_vgg13
    assert not (root / "vgg13").exists()
    with pytest.raises(ManifestError, match="not built"):
        read_manifest(root / "vgg13")
    [leftover] = staged(root)
    assert leftover.name.startswith(".vgg13.")  # hidden: no reader takes it for a net
    assert not (leftover / "1").exists()  # and no version folder a scanner could load
    assert not (leftover / "config.pbtxt").exists()
    [outcome] = build_models(["alexnet-lecture"], untrained=True, root=root, say=lambda _: None)
    assert outcome.status == "built"
    assert staged(root) == []
    assert sorted(path.name for path in root.iterdir()) == [".build.lock", "alexnet-lecture"]


def test_a_built_net_is_readable_by_everyone(models_root: Path) -> None:
    folder = models_root / "alexnet-lecture"
    modes = {
        str(path.relative_to(folder)): stat.S_IMODE(path.stat().st_mode)
        for path in [folder, *folder.rglob("*")]
    }
    assert modes == {
        ".": 0o755,
        "1": 0o755,
        "1/model.onnx": 0o644,
        "features.onnx": 0o644,
        "config.pbtxt": 0o644,
        "manifest.json": 0o644,
    }
    assert os.access(folder / "manifest.json", os.R_OK)
