"""Regenerate the golden reference files in ``tests/golden/torchvision/``.

Reads architecture facts (state_dict keys and shapes, parameter counts,
per-layer output shapes) and published weights metadata (URL, metrics,
GFLOPS, preprocessing transform, ImageNet category names) from the real
torchvision package. No pretrained weights are downloaded.

Must be run with a separate virtual environment that has torchvision 0.29.1
installed (the project's own torch build cannot import PyPI torchvision), e.g.::

    /tmp/tvenv/bin/python scripts/torchvision_reference.py

This is a maintenance script: tests only read the JSON it writes and must
never import it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torchvision import models

EXPECTED_TORCHVISION = "0.29.1"
NUM_CLASSES = 1000
INLINE_WIDTH = 90  # containers whose compact JSON fits this stay on one line

OUT_DIR = Path(__file__).resolve().parent.parent / "tests" / "golden" / "torchvision"

# builder name -> name of its weights enum in torchvision.models
BUILDERS: dict[str, str] = {
    "alexnet": "AlexNet_Weights",
    "vgg11": "VGG11_Weights",
    "vgg13": "VGG13_Weights",
    "vgg16": "VGG16_Weights",
    "vgg19": "VGG19_Weights",
    "vgg11_bn": "VGG11_BN_Weights",
    "vgg13_bn": "VGG13_BN_Weights",
    "vgg16_bn": "VGG16_BN_Weights",
    "vgg19_bn": "VGG19_BN_Weights",
}


def _weights_info(weights: Any) -> dict[str, Any]:
    """Describe a torchvision ``WeightsEnum`` entry without downloading it."""
    url: str = weights.url
    filename = url.rsplit("/", 1)[-1]
    stem = filename.rsplit(".", 1)[0]
    meta: dict[str, Any] = weights.meta
    metrics = meta["_metrics"]["ImageNet-1K"]
    return {
        "enum": str(weights),
        "url": url,
        "filename": filename,
        "sha256_prefix": stem.rsplit("-", 1)[-1],
        "num_params": meta["num_params"],
        "_ops": meta["_ops"],
        "acc@1": metrics["acc@1"],
        "acc@5": metrics["acc@5"],
        "categories_count": len(meta["categories"]),
    }


def _transforms_info(weights: Any) -> dict[str, Any]:
    """Describe the ImageNet preprocessing transform attached to ``weights``."""
    t = weights.transforms()
    return {
        "repr": str(t),
        "resize_size": list(t.resize_size),
        "crop_size": list(t.crop_size),
        "mean": list(t.mean),
        "std": list(t.std),
        "interpolation": t.interpolation.name,
        "antialias": t.antialias,
    }


def _output_shapes(model: nn.Module) -> list[dict[str, Any]]:
    """Output shape after each module of features, avgpool and classifier."""
    features = model.get_submodule("features")
    avgpool = model.get_submodule("avgpool")
    classifier = model.get_submodule("classifier")
    assert isinstance(features, nn.Sequential)
    assert isinstance(classifier, nn.Sequential)

    rows: list[dict[str, Any]] = []

    def record(name: str, module: nn.Module, x: torch.Tensor) -> None:
        rows.append({"module": name, "type": type(module).__name__, "shape": list(x.shape)})

    model.eval()
    with torch.no_grad():
        x = torch.zeros(1, 3, 224, 224)
        for i, layer in enumerate(features):
            x = layer(x)
            record(f"features.{i}", layer, x)
        x = avgpool(x)
        record("avgpool", avgpool, x)
        x = torch.flatten(x, 1)  # as torchvision's AlexNet/VGG forward()
        for i, layer in enumerate(classifier):
            x = layer(x)
            record(f"classifier.{i}", layer, x)
        # sanity: the layer-by-layer walk must match the model's own forward
        assert torch.equal(x, model(torch.zeros(1, 3, 224, 224)))
    return rows


def reference(builder: str, weights_enum: str) -> dict[str, Any]:
    """Build the golden record for one torchvision builder."""
    model: nn.Module = getattr(models, builder)(weights=None)
    weights = getattr(models, weights_enum).IMAGENET1K_V1
    return {
        "builder": builder,
        "torchvision_version": torchvision.__version__,
        "torch_version": torch.__version__,
        "state_dict": [[k, list(v.shape)] for k, v in model.state_dict().items()],
        "num_params": sum(p.numel() for p in model.parameters()),
        "weights": _weights_info(weights),
        "transforms": _transforms_info(weights),
        "output_shapes": _output_shapes(model),
    }


def _dumps(obj: Any, level: int = 0) -> str:
    """JSON with one-space indents; small leaf containers (a shape, a row) stay on one line."""
    flat = json.dumps(obj, ensure_ascii=False)
    if not isinstance(obj, dict | list) or len(flat) <= INLINE_WIDTH:
        return flat
    pad = " " * (level + 1)
    if isinstance(obj, dict):
        items = [f"{pad}{json.dumps(k)}: {_dumps(v, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * level + "}"
    items = [pad + _dumps(v, level + 1) for v in obj]
    return "[\n" + ",\n".join(items) + "\n" + " " * level + "]"


def _write(path: Path, data: Any) -> None:
    text = _dumps(data)
    if json.loads(text) != data:
        raise SystemExit(f"{path.name}: JSON does not round-trip")
    path.write_text(text + "\n", encoding="utf-8")


def main() -> None:
    """Write one JSON per builder plus the ImageNet category list."""
    version = torchvision.__version__.split("+", 1)[0]
    if version != EXPECTED_TORCHVISION:
        msg = f"need torchvision {EXPECTED_TORCHVISION}, found {torchvision.__version__}"
        raise SystemExit(msg)
    torch.manual_seed(0)
    OUT_DIR.mkdir(parents=True, exist_ok=True)

    categories: list[str] | None = None
    for builder, weights_enum in BUILDERS.items():
        data = reference(builder, weights_enum)
        _write(OUT_DIR / f"{builder}.json", data)
        cats = list(getattr(models, weights_enum).IMAGENET1K_V1.meta["categories"])
        if categories is None:
            categories = cats
        elif cats != categories:
            raise SystemExit(f"{builder}: ImageNet categories differ from alexnet's")
        print(f"{builder}: num_params={data['num_params']}")

    if categories is None or len(categories) != NUM_CLASSES:
        raise SystemExit("expected 1000 ImageNet categories")
    _write(
        OUT_DIR / "imagenet_categories.json",
        {
            "source": (
                f"torchvision {torchvision.__version__} weights metadata "
                "(torchvision.models.AlexNet_Weights.IMAGENET1K_V1.meta['categories']; "
                "identical for all AlexNet/VGG IMAGENET1K_V1 weights), index-aligned"
            ),
            "categories": categories,
        },
    )


if __name__ == "__main__":
    main()
