"""The ImageNet-1k class names, index-aligned with torchvision's, shipped inside the package."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LABEL_SETS = {"imagenet-1k": "imagenet_classes.json"}


@cache
def labels(label_set: str = "imagenet-1k") -> tuple[str, ...]:
    """The class names of a label set, index i naming output i of the classifier."""
    text = (resources.files("app.inference") / "data" / LABEL_SETS[label_set]).read_text(
        encoding="utf-8"
    )
    categories: list[str] = json.loads(text)["categories"]
    return tuple(categories)
