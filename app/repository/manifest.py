"""The manifest beside each model in the repository: models/<id>/manifest.json.

One schema, written by the build (app/building) and read by the runtime (app/inference) and the
pages (app/web/weights.py). A net's folder is published complete (files.py), so a manifest that
reads back and whose files have the sizes it records describes a finished build.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.repository.files import write_atomic
from app.repository.layout import MANIFEST_FILE

# 2: the weights record their state (why a net is untrained), folders are published complete.
FORMAT = 2

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Positive = Annotated[int, Field(ge=1)]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(Frozen):
    name: str
    height: Positive
    width: Positive
    channels: Positive
    layout: Literal["NCHW"]
    dtype: Literal["float32"]


class OutputSpec(Frozen):
    name: str
    classes: Positive
    # "probabilities" when the spec ends in a softmax layer: then no second softmax is applied.
    kind: Literal["logits", "probabilities"]


class Preprocess(Frozen):
    """torchvision's ImageNet transform: resize the shorter side, center-crop, normalize."""

    resize: Positive
    crop: Positive
    interpolation: Literal["bilinear"]
    antialias: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


class Labels(Frozen):
    set: Literal["imagenet-1k"]
    count: Positive


# Why a net holds the weights it does: a checkpoint ("pretrained"), or seeded random weights
# because none were ever published ("unpublished"), because the published ones could not be
# downloaded ("not_downloaded"), or because the build was asked for them ("requested").
WeightsState = Literal["pretrained", "unpublished", "not_downloaded", "requested"]


class Weights(Frozen):
    """Where the weights came from: a checkpoint (source and sha256) or a seed (untrained)."""

    state: WeightsState
    source: str | None = None
    sha256: Sha256 | None = None
    seed: int | None = None
    note: str | None = None

    @property
    def kind(self) -> Literal["pretrained", "untrained"]:
        return "pretrained" if self.state == "pretrained" else "untrained"

    def describe(self) -> str:
        if self.state == "pretrained":
            return f"pretrained from {self.source} (sha256 {self.sha256})"
        note = f"; {self.note}" if self.note else ""
        return f"untrained: seeded random weights, seed {self.seed}{note}"

    def same_weights(self, other: Weights) -> bool:
        """The same tensors: why a net is untrained (state, note) may differ."""
        mine = (self.kind, self.source, self.sha256, self.seed)
        return mine == (other.kind, other.source, other.sha256, other.seed)

    @model_validator(mode="after")
    def _provenance(self) -> Weights:
        if self.state == "pretrained" and (self.source is None or self.sha256 is None):
            raise ValueError("pretrained weights need their source and sha256")
        if self.state != "pretrained" and self.seed is None:
            raise ValueError("untrained weights need the seed they were drawn with")
        return self


class ModelFile(Frozen):
    path: str
    bytes: Positive
    sha256: Sha256


class FeatureOutput(Frozen):
    """One output of the features model: a conv or pool layer of the spec, (C, H, W)."""

    output: str
    index: Annotated[int, Field(ge=0)]
    name: str
    kind: str
    channels: Positive
    height: Positive
    width: Positive


class FeaturesFile(ModelFile):
    outputs: list[FeatureOutput]


class FiltersFile(ModelFile):
    """conv1's filters drawn as one PNG grid, written only for pretrained weights (random ones
    show nothing): ``count`` filters of ``channels`` x ``kernel_height`` x ``kernel_width`` in
    ``columns`` columns, each weight ``scale`` x ``scale`` pixels, ``width`` x ``height`` pixels
    in all (app/nets/filters.py)."""

    layer: str
    count: Positive
    channels: Positive
    kernel_height: Positive
    kernel_width: Positive
    columns: Positive
    scale: Positive
    width: Positive
    height: Positive


class Parity(Frozen):
    """ONNX Runtime (CPU) against torch on random inputs, measured when the model was built.

    A scaled difference is max |ORT - torch| / max(1, max |torch|): the absolute difference for
    outputs up to 1 in size, the relative one beyond. Both stayed within ``tolerance``.
    """

    batch: Positive
    max_abs_diff: float
    max_abs_reference: float
    scaled_diff: float
    features_scaled_diff: float
    tolerance: float


class Versions(Frozen):
    python: str
    torch: str
    onnx: str
    onnxruntime: str
    convatlas: str


class Manifest(Frozen):
    format: Literal[2]
    id: str
    name: str
    spec_sha256: Sha256
    opset: Annotated[int, Field(ge=17)]
    input: InputSpec
    output: OutputSpec
    preprocess: Preprocess
    labels: Labels
    weights: Weights
    model: ModelFile
    features: FeaturesFile
    parity: Parity
    versions: Versions
    built_at: str
    filters: FiltersFile | None = None

    def files(self) -> tuple[ModelFile, ...]:
        """Every file the manifest records, each with its size and sha256."""
        drawn = (self.filters,) if self.filters is not None else ()
        return (self.model, self.features, *drawn)


class ManifestError(ValueError):
    """The manifest is missing, unreadable, or does not describe the files beside it."""


def write_manifest(model_dir: Path, manifest: Manifest) -> None:
    write_atomic(
        model_dir / MANIFEST_FILE,
        (manifest.model_dump_json(indent=1, exclude_none=True) + "\n").encode(),
    )


def read_manifest(model_dir: Path) -> Manifest:
    """The manifest of one model folder, checked against the files it names."""
    path = model_dir / MANIFEST_FILE
    try:
        manifest = Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ManifestError("not built") from None
    except (OSError, ValueError, ValidationError) as error:
        raise ManifestError(f"unreadable manifest: {str(error).splitlines()[0]}") from None
    for file in manifest.files():
        _check_file(model_dir, file)
    return manifest


def _check_file(model_dir: Path, file: ModelFile) -> None:
    # A size check is cheap and catches a build interrupted between two files; hashing 0.5 GB
    # on every request would not be.
    path = model_dir / file.path
    try:
        size = path.stat().st_size
    except OSError:
        raise ManifestError(f"{file.path} is missing") from None
    if size != file.bytes:
        raise ManifestError(f"{file.path} has {size} bytes, the manifest says {file.bytes}")
