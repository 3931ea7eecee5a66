"""Where things live in the model repository, laid out for NVIDIA Triton:

    models/<id>/config.pbtxt     Triton's configuration (app/nets/triton.py writes it)
    models/<id>/1/model.onnx     the classifier: input [N, 3, H, W] float32 -> logits [N, 1000]
    models/<id>/features.onnx    every conv and pool layer's output, for the feature-map strip
    models/<id>/conv1-filters.png  conv1's filters as one grid (pretrained nets only)
    models/<id>/manifest.json    input, preprocessing, labels, weights, files, versions
    models/.build.lock           held by a build while it writes
    models/.<id>.<random>.staging  a net being built; renamed to models/<id>/ when complete

Triton serves the folder unchanged (it reads config.pbtxt and the numbered version folders and
ignores the other files). A staging folder's name starts with a dot, so neither Triton nor the
server takes it for a net.
"""

from __future__ import annotations

from pathlib import Path

MANIFEST_FILE = "manifest.json"
CONFIG_FILE = "config.pbtxt"
VERSION = "1"
MODEL_FILE = f"{VERSION}/model.onnx"
FEATURES_FILE = "features.onnx"
FILTERS_FILE = "conv1-filters.png"
LOCK_FILE = ".build.lock"
STAGING_SUFFIX = ".staging"
RETIRED_SUFFIX = ".retired"  # a net's previous folder, for the moment between two renames
LOG_FILE = "build.log"  # the server's background build writes its output there


def net_dir(root: Path, model_id: str) -> Path:
    return root / model_id


def lock_path(root: Path) -> Path:
    return root / LOCK_FILE
