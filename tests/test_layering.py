"""Imports point downward only: specs/core < nets < inference, cluster < web.

The cluster (Ray Serve) sits beside inference and may use it; inference never uses the cluster,
and only the cluster imports ray (the optional `cluster` extra)."""

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

# For each layer, the top-level modules it must never import (directly).
FRAMEWORKS = {"torch", "onnx", "onnxruntime", "fastapi", "starlette", "numpy", "PIL", "ray"}
UPPER = {"app.nets", "app.inference", "app.cluster", "app.web"}
FORBIDDEN = {
    "specs": FRAMEWORKS | UPPER | {"app.core"},
    "core": FRAMEWORKS | UPPER,
    "nets": {"onnxruntime", "fastapi", "starlette", "ray", "app.inference", "app.cluster"}
    | {"app.web"},
    "inference": {"torch", "onnx", "fastapi", "starlette", "ray", "app.nets", "app.cluster"}
    | {"app.web"},
    "cluster": {"torch", "onnx", "fastapi", "starlette", "app.nets", "app.web"},
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
