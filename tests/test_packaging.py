"""pyproject.toml, constraints.txt and the Makefile say what the issue asks, and stay in step
with each other. (tests/e2e/test_installed_wheel.py builds, installs and serves the wheel.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app.settings import site_dir

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
# Where Python 3.11 runs, as environment markers see it.
PLATFORMS = {
    "linux x86_64": {"sys_platform": "linux", "platform_machine": "x86_64"},
    "linux aarch64": {"sys_platform": "linux", "platform_machine": "aarch64"},
    "macOS arm64": {"sys_platform": "darwin", "platform_machine": "arm64"},
    "macOS x86_64": {"sys_platform": "darwin", "platform_machine": "x86_64"},
    "windows x64": {"sys_platform": "win32", "platform_machine": "AMD64"},
    "windows arm64": {"sys_platform": "win32", "platform_machine": "ARM64"},
}
HAS_GPU_WHEELS = {"linux x86_64", "windows x64"}  # PyPI's onnxruntime-gpu 1.31 wheels


def requirements(lines: list[str]) -> list[Requirement]:
    return [Requirement(line) for line in lines]


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            found[canonicalize_name(name)] = version
    return found


def applies(requirement: Requirement, platform: dict[str, str], extra: str = "") -> bool:
    if requirement.marker is None:
        return True
    return requirement.marker.evaluate({**platform, "extra": extra})


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_exactly_one_onnx_runtime_installs_everywhere(platform: str) -> None:
    chosen = [
        requirement.name
        for requirement in requirements(PROJECT["dependencies"])
        if requirement.name.startswith("onnxruntime") and applies(requirement, PLATFORMS[platform])
    ]
    expected = "onnxruntime-gpu" if platform in HAS_GPU_WHEELS else "onnxruntime"
    assert chosen == [expected]
    gpu = [r for r in requirements(EXTRAS["gpu"]) if applies(r, PLATFORMS[platform], "gpu")]
    assert [r.name for r in gpu] == (["onnxruntime-gpu"] if platform in HAS_GPU_WHEELS else [])
    assert all(r.extras == {"cuda", "cudnn"} for r in gpu)


def test_uvloop_is_skipped_only_where_it_has_no_build() -> None:
    [uvloop] = [r for r in requirements(PROJECT["dependencies"]) if r.name == "uvloop"]
    assert uvloop.marker == Marker("sys_platform != 'win32'")


def test_serving_needs_no_torch_and_no_test_tool() -> None:
    names = {r.name for r in requirements(PROJECT["dependencies"])}
    assert not names & {"torch", "onnx", "onnxscript", "plotly", "pytest", "playwright", "mypy"}
    assert {r.name for r in requirements(EXTRAS["build"])} >= {"torch", "onnx", "onnxscript"}
    assert "convatlas[build]" in EXTRAS["dev"]


def test_every_lower_bound_is_the_tested_version() -> None:
    """Each dependency's lower bound is the version constraints.txt pins, which the tests ran
    with: `>=` what was tested, never less."""
    tested = pins()
    lines = PROJECT["dependencies"] + [line for extra in EXTRAS.values() for line in extra]
    for requirement in requirements(lines):
        if requirement.name == "convatlas":
            continue
        [lower] = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        assert tested[canonicalize_name(requirement.name)] == lower, requirement


def test_this_environment_is_the_tested_set() -> None:
    """`make install` installs with the constraints: what runs these tests is what they pin."""
    tested = pins()
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name in tested:
            installed = dist.version.split("+", 1)[0]  # torch's +cpu
            assert installed == tested[name], (name, installed, tested[name])


def test_the_license_is_spdx_and_shipped() -> None:
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert any("Python :: 3.11" in classifier for classifier in PROJECT["classifiers"])


def test_settings_find_the_packaged_folders_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import settings

    assert site_dir("templates") == ROOT / "templates"  # this checkout
    package = tmp_path / "site-packages" / "app"
    (package / "static").mkdir(parents=True)
    monkeypatch.setattr(settings, "PACKAGE_DIR", package)
    assert settings.site_dir("static") == package / "static"  # a wheel's
    assert settings.site_dir("templates") == package.parent / "templates"  # a clone's


# The Makefile.


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The Makefile with a built model repository and a virtualenv beside it."""
    shutil.copy(ROOT / "Makefile", tmp_path)
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path)
    (tmp_path / "models" / "vgg16" / "1").mkdir(parents=True)
    (tmp_path / "models" / "vgg16" / "1" / "model.onnx").write_bytes(b"onnx")
    (tmp_path / "models" / "README.md").write_text("the model repository\n")
    (tmp_path / "models" / ".build.lock").write_text("")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".mypy_cache").mkdir()
    return tmp_path


def make(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_make_help_lists_every_target() -> None:
    listed = dict(re.findall(r"^  make (\S+)\s+(.+)$", make(ROOT, "help"), re.M))
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    assert set(listed) == targets
    assert all(len(text) > 10 for text in listed.values())
    assert make(ROOT) == make(ROOT, "help")  # the default goal


def test_make_clean_keeps_the_models_and_clean_models_removes_them(checkout: Path) -> None:
    make(checkout, "clean")
    assert not (checkout / ".venv").exists()
    assert not (checkout / ".mypy_cache").exists()
    assert (checkout / "models" / "vgg16" / "1" / "model.onnx").exists()
    make(checkout, "clean-models")
    assert sorted(p.name for p in (checkout / "models").iterdir()) == ["README.md"]


def test_make_run_installs_only_what_serving_and_the_model_build_need(checkout: Path) -> None:
    planned = make(checkout, "--dry-run", "run")
    installs = [line for line in planned.splitlines() if "pip install" in line]
    assert installs == [".venv/bin/pip install --quiet --constraint constraints.txt -e '.[build]'"]
    assert "convatlas serve --host 127.0.0.1 --port 8000" in planned
    everything = make(checkout, "--dry-run", "install")
    assert "-e '.[dev]'" in everything
    assert "--constraint constraints.txt" in everything
