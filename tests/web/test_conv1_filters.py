"""conv1's filters drawn from a pretrained checkpoint: the build writes them as one PNG grid and
records it in the manifest, the API serves it, the first-layer panel shows it; an untrained
net has none, and its panel and the API say why.

The expected picture is computed here on its own (torch's min and max per filter, one block of
scale x scale pixels per weight placed by explicit loops), not by calling the code under test.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from app.building.build import build_models, read_current
from app.nets import weights as w
from app.nets.builder import build
from app.nets.filters import filter_grid
from app.settings import Settings
from app.specs import builtin_registry
from app.web.app import create_app

from .support import error_of

PRETRAINED, UNTRAINED = "alexnet-torchvision", "alexnet-lecture"
CONV1 = "features.0.weight"  # torchvision's key of AlexNet's first conv
URL = f"/api/architectures/{PRETRAINED}/first-layer/filters.png"


def expected_grid(weights: torch.Tensor, scale: int, columns: int) -> np.ndarray:
    """(filters, channels, k, k) -> the grid as uint8 (H, W, channels): each filter stretched
    to 0..255 by its own minimum and maximum, filter i in row i // columns, column i % columns,
    each weight a scale x scale block, 1 px of white between filters."""
    count, channels, kh, kw = weights.shape
    rows = -(-count // columns)
    height, width = rows * kh * scale + rows - 1, columns * kw * scale + columns - 1
    grid = np.full((height, width, channels), 255, dtype=np.uint8)
    for index in range(count):
        one = weights[index].double()
        values = torch.round((one - one.min()) / (one.max() - one.min()) * 255).to(torch.uint8)
        top = (index // columns) * (kh * scale + 1)
        left = (index % columns) * (kw * scale + 1)
        for channel in range(channels):
            for y in range(kh):
                for x in range(kw):
                    block_y, block_x = top + y * scale, left + x * scale
                    grid[block_y : block_y + scale, block_x : block_x + scale, channel] = int(
                        values[channel, y, x]
                    )
    return grid


def pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    array = np.asarray(image.convert(image.mode))
    return array if array.ndim == 3 else array[:, :, None]


class TestTheGrid:
    def test_rgb_filters_in_order_with_gaps_and_blocks(self) -> None:
        weights = torch.randn(5, 3, 3, 2, generator=torch.Generator().manual_seed(1))
        drawn = np.asarray(filter_grid(weights.numpy(), 4))
        # 5 filters: 3 columns, 2 rows; 3x2 weights at 4 px each, 1 px apart.
        assert drawn.shape == (2 * 12 + 1, 3 * 8 + 2, 3)
        np.testing.assert_array_equal(drawn, expected_grid(weights, 4, 3))

    def test_one_channel_is_grey_and_a_flat_filter_is_mid_grey(self) -> None:
        weights = torch.randn(4, 1, 2, 2, generator=torch.Generator().manual_seed(2))
        weights[3] = 0.5
        image = filter_grid(weights.numpy(), 1)
        assert image.mode == "L"
        drawn = np.asarray(image)
        np.testing.assert_array_equal(drawn[:2, :2], expected_grid(weights[:1], 1, 1)[:, :, 0])
        np.testing.assert_array_equal(drawn[3:, 3:], np.full((2, 2), 128))
        assert drawn[:, 2].tolist() == [255] * 5  # the gap between the columns

    def test_filters_of_other_depths_are_not_an_image(self) -> None:
        with pytest.raises(ValueError, match="4 channels"):
            filter_grid(np.zeros((2, 4, 3, 3), dtype=np.float32), 1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alexnet-torchvision's state_dict saved as torchvision saves it, hash-named like its
    published file (alexnet-owt-7be5be79.pth)."""
    folder = tmp_path_factory.mktemp("checkpoint")
    draft = folder / "alexnet-owt.pth"
    torch.save(build(builtin_registry().get(PRETRAINED), seed=11).state_dict(), draft)
    named = folder / f"alexnet-owt-{w.sha256_of(draft)[:8]}.pth"
    draft.rename(named)
    return named


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path) -> Path:
    """alexnet-torchvision built from the checkpoint, alexnet-lecture untrained (none
    published), every other net not built."""
    root = tmp_path_factory.mktemp("filters-models")
    settings = Settings(weights_dir=tmp_path_factory.mktemp("cache"))
    built = build_models(
        [PRETRAINED], weights=str(checkpoint), root=root, settings=settings, say=lambda _: None
    )
    built += build_models([UNTRAINED], root=root, settings=settings, say=lambda _: None)
    assert [outcome.status for outcome in built] == ["built", "built"], built
    return root


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    settings = Settings(models_dir=root, build_on_start=False, providers="cpu")
    with TestClient(create_app(settings)) as client:
        yield client


def manifest_of(root: Path, net_id: str) -> dict[str, object]:
    found: dict[str, object] = json.loads((root / net_id / "manifest.json").read_text())
    return found


class TestTheBuild:
    def test_the_png_is_the_checkpoints_conv1(self, root: Path, checkpoint: Path) -> None:
        conv1 = torch.load(checkpoint, weights_only=True)[CONV1]
        assert conv1.shape == (64, 3, 11, 11)
        png = (root / PRETRAINED / "conv1-filters.png").read_bytes()
        drawn = pixels(png)
        # 8 x 8 filters of 11 x 11 weights at 3 px each, 1 px apart: 8*33 + 7 = 271, so the
        # grid fits a phone's 390 px at its own pixels.
        assert drawn.shape == (271, 271, 3)
        np.testing.assert_array_equal(drawn, expected_grid(conv1, 3, 8))

    def test_the_manifest_records_it_for_integrity_checks(self, root: Path) -> None:
        filters = manifest_of(root, PRETRAINED)["filters"]
        png = root / PRETRAINED / "conv1-filters.png"
        assert filters == {
            "path": "conv1-filters.png",
            "bytes": png.stat().st_size,
            "sha256": w.sha256_of(png),
            "layer": "conv1",
            "count": 64,
            "channels": 3,
            "kernel_height": 11,
            "kernel_width": 11,
            "columns": 8,
            "scale": 3,
            "width": 271,
            "height": 271,
        }
        assert png.stat().st_mode & 0o777 == 0o644

    def test_an_untrained_build_draws_nothing(self, root: Path) -> None:
        assert "filters" not in manifest_of(root, UNTRAINED)
        assert not (root / UNTRAINED / "conv1-filters.png").exists()
        assert sorted(p.name for p in (root / UNTRAINED).iterdir()) == [
            "1",
            "config.pbtxt",
            "features.onnx",
            "manifest.json",
        ]

    def test_a_pretrained_build_without_filters_is_not_current(
        self, root: Path, tmp_path: Path
    ) -> None:
        spec = builtin_registry().get(PRETRAINED)
        assert read_current(root / PRETRAINED, spec) is not None
        older = tmp_path / PRETRAINED
        older.mkdir()
        for name in ("config.pbtxt", "features.onnx"):
            (older / name).hardlink_to(root / PRETRAINED / name)
        (older / "1").mkdir()
        (older / "1" / "model.onnx").hardlink_to(root / PRETRAINED / "1" / "model.onnx")
        manifest = manifest_of(root, PRETRAINED)
        del manifest["filters"]
        (older / "manifest.json").write_text(json.dumps(manifest))
        assert read_current(older, spec) is None  # so the next build draws them


class TestTheApi:
    def test_the_png_with_its_etag(self, client: TestClient, root: Path) -> None:
        response = client.get(URL)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert "content-encoding" not in response.headers  # a PNG is compressed already
        assert response.content == (root / PRETRAINED / "conv1-filters.png").read_bytes()
        tag = response.headers["etag"]
        assert tag == f'"{w.sha256_of(root / PRETRAINED / "conv1-filters.png")[:32]}"'
        again = client.get(URL, headers={"If-None-Match": tag})
        assert (again.status_code, again.content) == (304, b"")

    def test_an_untrained_net_has_none(self, client: TestClient) -> None:
        response = client.get(f"/api/architectures/{UNTRAINED}/first-layer/filters.png")
        assert response.status_code == 404
        error = error_of(response)
        assert error["code"] == "no_filters"
        assert "untrained" in error["message"]

    def test_a_net_not_built_has_none(self, client: TestClient, root: Path) -> None:
        response = client.get("/api/architectures/vgg11/first-layer/filters.png")
        assert response.status_code == 409
        error = error_of(response)
        assert (error["code"], error["message"]) == (
            "model_not_built",
            "the net's model is not built",
        )
        assert str(root) not in response.text
        unknown = client.get("/api/architectures/nope/first-layer/filters.png")
        assert (unknown.status_code, error_of(unknown)["code"]) == (404, "unknown_net")

    def test_a_damaged_png_is_refused_and_names_no_path(
        self, client: TestClient, root: Path
    ) -> None:
        png = root / PRETRAINED / "conv1-filters.png"
        original = png.read_bytes()
        try:
            png.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # same size
            damaged = client.get(URL)
            assert (damaged.status_code, error_of(damaged)["code"]) == (409, "model_damaged")
            png.write_bytes(original[:100])  # cut: the manifest's size check sees it
            cut = client.get(URL)
            assert cut.status_code == 409
            assert "conv1-filters.png has 100 bytes" in error_of(cut)["message"]
            for answer in (damaged, cut):
                assert str(root) not in answer.text
        finally:
            png.write_bytes(original)
        assert client.get(URL).status_code == 200


def squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", unescape(text))


class TestThePanel:
    def test_a_pretrained_net_shows_the_grid_named_by_its_checkpoint(
        self, client: TestClient, checkpoint: Path
    ) -> None:
        page = squeeze(client.get(f"/nets/{PRETRAINED}").text)
        img = re.search(r'<figure class="conv1-filters" id="filters"> <img ([^>]*)>', page)
        assert img is not None
        attributes = dict(re.findall(r'(\w+)="([^"]*)"', img[1]))
        assert attributes["src"].startswith(URL + "?v=")
        assert (attributes["width"], attributes["height"]) == ("271", "271")
        assert "64 filters of AlexNet" in attributes["alt"]
        assert checkpoint.name in attributes["alt"]
        caption = f"64 filters, 11\u00d711\u00d73, from {checkpoint.name}."
        assert f'<figcaption id="filters-caption">{caption}' in page
        assert str(checkpoint.parent) not in page
        assert client.get(attributes["src"]).status_code == 200

    def test_an_untrained_net_says_so_and_draws_nothing(self, client: TestClient) -> None:
        page = squeeze(client.get(f"/nets/{UNTRAINED}").text)
        assert (
            '<p id="filters-state">This net is untrained: no ImageNet weights were ever '
            "published for it, so it runs on seeded random weights." in page
        )
        assert "there is nothing to see, so none are drawn." in page
        assert 'id="filters"' not in page
        assert "filters.png" not in page
