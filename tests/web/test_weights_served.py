"""Weights as they are served: every page and answer says what each net's built model holds now
(pretrained, untrained because none were published, untrained because the download failed, or not
built), in plain words, and changes when a build does."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from app.specs import builtin_registry
from app.web.app import create_app
from app.web.catalog import weights_now

SHA = "ab" * 32
FILE_BYTES = 64


def _manifest(template: dict[str, Any], net_id: str, weights: dict[str, Any]) -> dict[str, Any]:
    files = {"model": "1/model.onnx", "features": "features.onnx"}
    manifest = {**template, "id": net_id, "weights": weights}
    for key, path in files.items():
        manifest[key] = {**template[key], "path": path, "bytes": FILE_BYTES}
    return manifest


def write_model(root: Path, template: dict[str, Any], net_id: str, weights: dict[str, Any]) -> None:
    """A model folder whose manifest says these weights (its files are stand-ins of the size the
    manifest records: the weights are all the pages read)."""
    folder = root / net_id
    (folder / "1").mkdir(parents=True, exist_ok=True)
    for path in ("1/model.onnx", "features.onnx"):
        (folder / path).write_bytes(b"\0" * FILE_BYTES)
    manifest = _manifest(template, net_id, weights)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


UNPUBLISHED = {"state": "unpublished", "seed": 0, "note": "none published"}
UNTRAINED = {"state": "not_downloaded", "seed": 0, "note": "offline: could not download"}
REQUESTED = {"state": "requested", "seed": 0, "note": "--untrained was given"}
PRETRAINED = {
    "state": "pretrained",
    "source": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "sha256": SHA,
}


@pytest.fixture(scope="module")
def template(models_root: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(
        (models_root / "alexnet-lecture" / "manifest.json").read_text(encoding="utf-8")
    )
    return manifest


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory, template: dict[str, Any]) -> Path:
    """alexnet-lecture untrained (none published), vgg11 untrained (its download failed), vgg19
    untrained (built with --untrained), zfnet-2013 built with --untrained though none were ever
    published, alexnet-torchvision pretrained, every other net not built."""
    root = tmp_path_factory.mktemp("served")
    write_model(root, template, "alexnet-lecture", UNPUBLISHED)
    write_model(root, template, "vgg19", REQUESTED)
    write_model(root, template, "zfnet-2013", REQUESTED)
    write_model(root, template, "vgg11", UNTRAINED)
    write_model(root, template, "alexnet-torchvision", PRETRAINED)
    return root


@pytest.fixture(scope="module")
def served_client(repository: Path) -> Iterator[TestClient]:
    settings = Settings(models_dir=repository, build_on_start=False, providers="cpu")
    with TestClient(create_app(settings)) as client:
        yield client


def test_each_state_from_the_manifest(repository: Path) -> None:
    states = {net_id: weights_now(repository, net_id).state for net_id in builtin_registry().ids()}
    assert states["alexnet-lecture"] == "unpublished"
    assert states["vgg11"] == "not_downloaded"
    assert states["vgg19"] == "requested"
    assert states["zfnet-2013"] == "unpublished"  # --untrained changed nothing for it
    assert states["alexnet-torchvision"] == "pretrained"
    assert states["vgg16"] == "not_built"
    pretrained = weights_now(repository, "alexnet-torchvision")
    assert (pretrained.checkpoint, pretrained.sha256) == ("alexnet-owt-7be5be79.pth", SHA)


def test_the_home_table_says_what_each_net_serves(served_client: TestClient) -> None:
    html = served_client.get("/").text
    cells = dict(
        re.findall(
            r'<tr data-net="([\w-]+)">.*?<td class="weights [\w-]+"[^>]*>([^<]*)</td>', html, re.S
        )
    )
    assert cells["alexnet-lecture"] == "untrained: none published"
    assert cells["vgg11"] == "untrained: not downloaded"
    assert cells["vgg19"] == "untrained: on request"
    assert cells["zfnet-2013"] == "untrained: none published"
    assert cells["alexnet-torchvision"] == "pretrained"
    assert cells["vgg16"] == "not built yet"
    assert "Pretrained weights" not in html
    assert ">yes<" not in html


def _hero(html: str) -> str:
    found = re.search(r'<section class="hero net-hero">(.*?)</section>', html, re.S)
    assert found is not None
    return unescape(found[1])


def test_a_net_whose_download_failed_says_so_and_how_to_fix_it(served_client: TestClient) -> None:
    html = served_client.get("/nets/vgg11").text
    found = re.search(r'<p class="weights-now[^"]*" id="weights-now">(.*?)</p>', html, re.S)
    assert found is not None
    header = unescape(found[1])
    assert "vgg11-8a719046.pth" in header
    assert "<code>convatlas models build vgg11</code>" in header
    assert "download.pytorch.org" in header  # the host to reach, not a URL
    for leak in ("http://", "https://", "Errno", "Name or service"):
        assert leak not in header
    assert "weights: untrained: not downloaded" in html
    assert "pretrained weights available" not in html
    banner = re.search(r"<div class=\"banner untrained\"[^>]*>", html)
    assert banner is not None
    assert "hidden" not in banner[0]


def test_a_net_built_untrained_on_request_does_not_blame_the_network(
    served_client: TestClient,
) -> None:
    hero = _hero(served_client.get("/nets/vgg19").text)
    assert "built with --untrained" in hero
    assert "could not be downloaded" not in hero
    assert "convatlas models build vgg19" in hero


def test_a_pretrained_net_names_its_checkpoint_and_hash(served_client: TestClient) -> None:
    html = served_client.get("/nets/alexnet-torchvision").text
    assert "weights: pretrained" in html
    assert f"alexnet-owt-7be5be79.pth (sha256 {SHA})" in html
    banner = re.search(r"<div class=\"banner untrained\"[^>]*>", html)
    assert banner is not None
    assert "hidden" in banner[0]


def test_a_net_not_built_claims_nothing(served_client: TestClient) -> None:
    hero = _hero(served_client.get("/nets/vgg16").text)
    assert "weights: not built yet" in hero
    assert "pretrained" not in hero


def test_the_api_says_the_same(served_client: TestClient) -> None:
    listing = {item["id"]: item for item in served_client.get("/api/architectures").json()}
    assert listing["vgg11"]["weights"]["state"] == "not_downloaded"
    assert listing["vgg11"]["weights"]["fix"] == "convatlas models build vgg11"
    assert listing["alexnet-torchvision"]["weights"]["sha256"] == SHA
    info = served_client.get("/api/predict/vgg11").json()
    assert info["served"] == listing["vgg11"]["weights"]


def test_the_pages_follow_a_build_that_finishes_while_the_server_runs(
    served_client: TestClient, repository: Path, template: dict[str, Any]
) -> None:
    assert "weights: not built yet" in served_client.get("/nets/vgg13").text
    before = served_client.get("/").text
    write_model(repository, template, "vgg13", {**PRETRAINED, "source": "/tmp/vgg13-19584684.pth"})
    manifest = repository / "vgg13" / "manifest.json"
    os.utime(manifest, ns=(1, 1))  # a different stamp, whatever the clock's resolution
    assert "weights: pretrained" in served_client.get("/nets/vgg13").text
    assert served_client.get("/").text != before
