"""What a built net's manifest says about it, from its spec: input, preprocessing, labels,
output, and the fingerprint that tells whether a build is still current."""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Literal

import onnx
import torch

from app.nets import weights as w
from app.nets.export import INPUT_NAME, OPSET, OUTPUT_NAME, ExportError, FeatureLayer
from app.repository.manifest import (
    FORMAT,
    FeatureOutput,
    FeaturesFile,
    FiltersFile,
    InputSpec,
    Labels,
    Manifest,
    ModelFile,
    OutputSpec,
    Parity,
    Preprocess,
    Versions,
    Weights,
)
from app.specs import Spec
from app.specs.models import Linear

# Bump when the export changes what ends up in the files, so existing builds are redone.
EXPORT_FORMAT = 1

# torchvision's ImageNet transform (the same for AlexNet and every VGG); see tests/golden.
RESIZE = 256
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LABEL_SET, LABEL_COUNT = "imagenet-1k", 1000


def manifest_for(
    spec: Spec,
    weights: Weights,
    files: tuple[ModelFile, ModelFile],
    layers: list[FeatureLayer],
    parity: Parity,
    onnxruntime: str,
    filters: FiltersFile | None = None,
) -> Manifest:
    """The manifest of a net built from ``spec`` into ``files`` (the classifier, the features
    model), checked by ``parity`` on ONNX Runtime ``onnxruntime``; ``filters``: conv1 drawn."""
    volume = spec.input
    model, features = files
    outputs = [
        FeatureOutput(
            output=layer.name,
            index=layer.index,
            name=layer.name,
            kind=layer.kind,
            channels=layer.channels,
            height=layer.height,
            width=layer.width,
        )
        for layer in layers
    ]
    return Manifest(
        format=FORMAT,
        id=spec.id or spec.name,
        name=spec.name,
        spec_sha256=spec_fingerprint(spec),
        opset=OPSET,
        input=InputSpec(
            name=INPUT_NAME,
            height=volume.height,
            width=volume.width,
            channels=volume.channels,
            layout="NCHW",
            dtype="float32",
        ),
        output=OutputSpec(name=OUTPUT_NAME, classes=classes(spec), kind=_output_kind(spec)),
        preprocess=preprocess(spec),
        labels=Labels(set=LABEL_SET, count=LABEL_COUNT),
        weights=weights,
        model=model,
        features=FeaturesFile(
            path=features.path, bytes=features.bytes, sha256=features.sha256, outputs=outputs
        ),
        parity=parity,
        versions=Versions(
            python=platform.python_version(),
            torch=torch.__version__,
            onnx=onnx.__version__,
            onnxruntime=onnxruntime,
            convatlas=metadata.version("convatlas"),
        ),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        filters=filters,
    )


def model_file(path: Path, relative: str) -> ModelFile:
    """A written model file as the manifest records it, under its path in the net's folder."""
    return ModelFile(path=relative, bytes=path.stat().st_size, sha256=w.sha256_of(path))


def preprocess(spec: Spec) -> Preprocess:
    if spec.input.height != spec.input.width or spec.input.channels != 3:
        raise ExportError(f"{spec.id}: only square RGB inputs are served")
    if spec.input.height > RESIZE:
        raise ExportError(
            f"{spec.id}: a {spec.input.height} crop needs more than a {RESIZE} resize"
        )
    return Preprocess(
        resize=RESIZE,
        crop=spec.input.height,
        interpolation="bilinear",
        antialias=True,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )


def classes(spec: Spec) -> int:
    linear = [layer for layer in spec.layers if isinstance(layer, Linear)]
    count = linear[-1].out_features if linear else 0
    if count != LABEL_COUNT:
        raise ExportError(f"{spec.id}: serves ImageNet-1k classifiers only, not {count} classes")
    return count


def _output_kind(spec: Spec) -> Literal["logits", "probabilities"]:
    return "probabilities" if spec.layers[-1].kind == "softmax" else "logits"


def spec_fingerprint(spec: Spec) -> str:
    """sha256 of what shapes the exported files: the input, the layers, the export format."""
    layers = [layer.model_dump(exclude={"notes", "lecture"}) for layer in spec.layers]
    payload = {
        "input": spec.input.model_dump(),
        "layers": layers,
        "export": EXPORT_FORMAT,
        "opset": OPSET,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
