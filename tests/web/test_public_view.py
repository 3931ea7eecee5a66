"""Nothing internal in answers (issue 14): /readyz and the predict answers name no filesystem
path, no URL of the weights store and no raw OS error; the server's log has them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from app.web.app import create_app
from app.web.public import OS_ERROR_WORDS, public_text

UNLOADABLE, PRETRAINED, OFFLINE = "alexnet-lecture", "zfnet-lecture", "zfnet-2013"
STORE_URL = "https://download.pytorch.org/models/zfnet-0123abcd.pth"
RESOLVER_ERROR = "<urlopen error [Errno -2] Name or service not known>"
# What an answer must not hold: an absolute path of two or more segments (outside a URL), the
# weights store's host, an errno.
ABSOLUTE_PATH = re.compile(r"(?<![\w.~/:-])(?:/[^\s/'\":,;()\[\]<>]+){2,}")
FORBIDDEN = (re.compile(r"download\.pytorch\.org"), re.compile(r"Errno"))
API_PATHS = re.compile(r"^/(?:api|static|nets|docs|custom|compare|lecture|practice)/")


def _edit_manifest(folder: Path, update: dict[str, Any]) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["weights"] = update
    path.unlink()  # a hard link to the shared repository's file: never write into it
    path.write_text(json.dumps(manifest))


def _zeros_the_manifest_vouches_for(folder: Path) -> None:
    model = folder / "1" / "model.onnx"
    size = model.stat().st_size
    model.unlink()
    model.write_bytes(bytes(size))
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["model"]["sha256"] = hashlib.sha256(bytes(size)).hexdigest()
    path.unlink()
    path.write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def leaky_root(models_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared repository, hard-linked, with what used to leak: a model ONNX Runtime cannot
    load, a pretrained net whose source is the weights store's URL, and a net whose download
    failed offline with the resolver's errno."""
    root = tmp_path_factory.mktemp("leaky") / "models"
    shutil.copytree(models_root, root, copy_function=os.link)
    _zeros_the_manifest_vouches_for(root / UNLOADABLE)
    _edit_manifest(
        root / PRETRAINED, {"state": "pretrained", "source": STORE_URL, "sha256": "ab" * 32}
    )
    note = f"download of {STORE_URL} failed: {RESOLVER_ERROR}; cached at {root}/ckpt.pth"
    _edit_manifest(root / OFFLINE, {"state": "not_downloaded", "seed": 0, "note": note})
    return root


@pytest.fixture(scope="module")
def leaky_client(leaky_root: Path) -> Iterator[TestClient]:
    settings = Settings(models_dir=leaky_root.resolve(), build_on_start=False, providers="cpu")
    with TestClient(create_app(settings)) as client:
        yield client


def _leaks(text: str) -> list[str]:
    found = [m.group(0) for m in ABSOLUTE_PATH.finditer(text) if not API_PATHS.match(m.group(0))]
    return found + [pattern.pattern for pattern in FORBIDDEN if pattern.search(text)]


def test_no_answer_names_a_path_the_store_or_an_errno(
    leaky_client: TestClient, leaky_root: Path, photo_jpeg: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    files = {"image": ("p.jpg", photo_jpeg, "image/jpeg")}
    nets = (UNLOADABLE, PRETRAINED, OFFLINE)
    with caplog.at_level(logging.WARNING):
        answers = [leaky_client.post(f"/api/predict/{net}", files=files) for net in nets]
        answers.append(
            leaky_client.post("/api/predict", params={"ids": ",".join(nets)}, files=files)
        )
        answers += [leaky_client.get(f"/api/predict/{net}") for net in nets]
        answers.append(leaky_client.get("/readyz"))
    assert answers[0].status_code >= 500  # the unloadable net was tried, and refused
    ready = answers[-1].json()["inference"]
    assert ready["models_dir"] == "models"
    unloadable = next(m for m in ready["models"] if m["id"] == UNLOADABLE)
    assert "onnxruntime cannot load" in unloadable["reason"]  # the reason stays, in words
    pretrained = next(m for m in ready["models"] if m["id"] == PRETRAINED)
    assert "zfnet-0123abcd.pth" in pretrained["weights_detail"]  # the file's name stays
    for answer in answers:
        assert answer.headers["content-type"].startswith("application/json")
        assert _leaks(answer.text) == [], (answer.request.url, answer.text[:400])
    logged = caplog.text
    assert STORE_URL in logged
    assert RESOLVER_ERROR in logged
    assert str(leaky_root.resolve()) in logged  # operators get the paths in the log


@pytest.mark.parametrize(
    ("text", "public"),
    [
        ("pretrained: https://download.pytorch.org/models/a-1.pth (x)", "pretrained: a-1.pth (x)"),
        ("cannot load /srv/models/a/1/model.onnx: bad", "cannot load model.onnx: bad"),
        ("C:\\models\\a\\model.onnx is missing", "model.onnx is missing"),
        ("<urlopen error [Errno -2] Name unknown>", f"<urlopen error {OS_ERROR_WORDS}>"),
        ("1/model.onnx has 0 bytes; ratio 3/4", "1/model.onnx has 0 bytes; ratio 3/4"),
        ("no Ray cluster at 10.0.0.5:6379: refused", "no Ray cluster at its address: refused"),
        ("head at ray-head.lab.example:10001", "head at its address"),
        ("at 12:30, 2 of 3:1 replicas", "at 12:30, 2 of 3:1 replicas"),
    ],
)  # fmt: skip
def test_public_text(text: str, public: str) -> None:
    assert public_text(text) == public
