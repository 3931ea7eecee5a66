"""Imports point downward only: specs/core/repository < nets < inference, cluster <
web/building.

The cluster (Ray Serve) sits beside inference and may use it; inference never uses the cluster,
and only the cluster imports ray (the optional `cluster` extra)."""

import ast
import re
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

# For each layer, the top-level modules it must never import (directly).
FRAMEWORKS = {"torch", "onnx", "onnxruntime", "fastapi", "starlette", "numpy", "PIL", "ray"}
TOP = {"app.web", "app.building", "app.cli", "app.main", "app.gpu_check"}
UPPER = {"app.nets", "app.inference", "app.cluster"} | TOP
FORBIDDEN = {
    "specs": FRAMEWORKS | UPPER | {"app.core", "app.repository"},
    "core": FRAMEWORKS | UPPER | {"app.repository"},
    "repository": FRAMEWORKS | UPPER,
    "nets": {"onnxruntime", "fastapi", "starlette", "ray", "app.inference", "app.cluster"} | TOP,
    "inference": {"torch", "onnx", "fastapi", "starlette", "ray", "app.nets", "app.cluster"} | TOP,
    "cluster": {"torch", "onnx", "fastapi", "starlette", "app.nets"} | TOP,
    "web": {"torch", "onnx", "ray", "app.nets"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations(layer: str) -> list[str]:
    found = []
    for path in sorted((APP / layer).rglob("*.py")):
        for module in imported_modules(path):
            for banned in FORBIDDEN[layer]:
                if module == banned or module.startswith(banned + "."):
                    found.append(f"{path.relative_to(APP)} imports {module}")
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_downward(layer: str) -> None:
    assert (APP / layer).is_dir()
    assert violations(layer) == []


# A lower layer must not reach an upper one by running it as a process either.
LOWER = ("specs", "core", "repository", "nets", "inference", "cluster")
LAUNCHERS = {"subprocess", "multiprocessing", "concurrent.futures.process"}
LAUNCHING_CALLS = {"system", "popen", "posix_spawn", "posix_spawnp", "fork", "forkpty"}
APP_MODULE = re.compile(r"^(?:-m\s*)?app(?:\.\w+)+$|-m\s+app\.\w")


def launches_app_module(path: Path) -> list[str]:
    """Why ``path`` looks like it runs an ``app`` module as a process: it can start processes
    (subprocess, multiprocessing, os.exec*/spawn*/system, sys.executable) and names an ``app``
    module in a string (``"app.cli"``, ``"-m app.cli"``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    launcher = [
        module
        for module in imported_modules(path)
        if any(module == name or module.startswith(name + ".") for name in LAUNCHERS)
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner, attribute = node.value.id, node.attr
            if owner == "sys" and attribute == "executable":
                launcher.append("sys.executable")
            elif owner == "os" and (
                attribute in LAUNCHING_CALLS or attribute.startswith(("exec", "spawn"))
            ):
                launcher.append(f"os.{attribute}")
    named = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and APP_MODULE.search(node.value.strip())
    ]
    return [f"{launcher[0]} with {named[0]!r}"] if launcher and named else []


@pytest.mark.parametrize("layer", LOWER)
def test_a_lower_layer_launches_no_app_module_as_a_process(layer: str) -> None:
    found = [
        f"{path.relative_to(APP)}: {reason}"
        for path in sorted((APP / layer).rglob("*.py"))
        for reason in launches_app_module(path)
    ]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        'import subprocess, sys\nsubprocess.run([sys.executable, "-m", "app.cli", "models"])\n',
        'from subprocess import Popen\nPopen(["python", "-m app.inference.verify"])\n',
        'import os, sys\nos.execv(sys.executable, [sys.executable, "-m", "app.cli"])\n',
        'import multiprocessing\nMODULE = "app.nets.half"\n',
    ],
)
def test_the_checker_sees_an_app_module_launched(tmp_path: Path, source: str) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(source)
    assert launches_app_module(sample) != []


def test_the_checker_lets_a_process_without_app_modules_be(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('import subprocess\nsubprocess.run(["nvidia-smi"])\nNAME = "app"\n')
    assert launches_app_module(sample) == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import torch\nfrom fastapi import FastAPI\nfrom . import sibling\n")
    assert imported_modules(sample) == {"torch", "fastapi"}


def test_loading_the_core_pulls_in_no_heavy_framework() -> None:
    """Transitively too: importing every core module leaves torch, fastapi and ORT unloaded."""
    import subprocess
    import sys

    code = (
        "import importlib, pkgutil, sys, app.core, app.specs\n"
        "for m in pkgutil.iter_modules(app.core.__path__):\n"
        "    importlib.import_module('app.core.' + m.name)\n"
        "print(sorted({'torch', 'fastapi', 'onnxruntime', 'starlette'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=APP.parent
    )
    assert result.stdout.strip() == "[]"
