"""The manifest: what the build writes is what the runtime reads, strictly, one schema."""

import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.nets.describe import IMAGENET_MEAN, IMAGENET_STD, RESIZE
from app.nets.weights import sha256_of
from app.repository.manifest import Manifest, ManifestError, Weights, read_manifest

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "torchvision"


@pytest.mark.parametrize("model_id", ["alexnet-lecture", "zfnet-2013"])
def test_the_built_manifest_reads_back_under_the_strict_schema(
    models_root: Path, model_id: str
) -> None:
    manifest = read_manifest(models_root / model_id)
    assert manifest.id == model_id
    assert manifest.opset >= 17
    assert manifest.format == 2
    assert manifest.weights == Weights(state="requested", seed=0, note="--untrained was given")
    assert manifest.weights.kind == "untrained"
    assert manifest.model.sha256 == sha256_of(models_root / model_id / "1" / "model.onnx")
    assert manifest.features.sha256 == sha256_of(models_root / model_id / "features.onnx")
    assert manifest.parity.max_abs_diff <= manifest.parity.tolerance == 1e-4
    assert {"torch", "onnx", "onnxruntime", "python", "convatlas"} <= set(
        manifest.versions.model_dump()
    )


def test_the_preprocessing_numbers_are_torchvisions(models_root: Path) -> None:
    transform = json.loads((GOLDEN / "vgg16.json").read_text())["transforms"]
    assert (RESIZE, list(IMAGENET_MEAN), list(IMAGENET_STD)) == (
        transform["resize_size"][0],
        transform["mean"],
        transform["std"],
    )
    steps = read_manifest(models_root / "zfnet-2013").preprocess
    assert (steps.resize, steps.crop) == (256, 224)
    assert (list(steps.mean), list(steps.std)) == (transform["mean"], transform["std"])
    assert steps.antialias is transform["antialias"]
    assert transform["interpolation"] == "BILINEAR"
    assert read_manifest(models_root / "alexnet-lecture").preprocess.crop == 227


def test_an_unknown_field_or_missing_provenance_is_refused(models_root: Path) -> None:
    raw = json.loads((models_root / "zfnet-2013" / "manifest.json").read_text())
    with pytest.raises(ValidationError):
        Manifest.model_validate({**raw, "surprise": 1})
    with pytest.raises(ValidationError, match="source and sha256"):
        Weights.model_validate({"state": "pretrained", "source": "https://example.org/x.pth"})
    with pytest.raises(ValidationError, match="seed"):
        Weights.model_validate({"state": "not_downloaded"})
    with pytest.raises(ValidationError):  # format 1's field: such a build is redone
        Weights.model_validate({"kind": "untrained", "seed": 0})


def test_a_missing_or_damaged_manifest_says_what_is_wrong(
    models_root: Path, tmp_path: Path
) -> None:
    with pytest.raises(ManifestError, match="not built"):
        read_manifest(tmp_path / "vgg16")
    folder = tmp_path / "zfnet-2013"
    folder.mkdir()
    shutil.copy(models_root / "zfnet-2013" / "manifest.json", folder)
    with pytest.raises(ManifestError, match=r"1/model\.onnx is missing"):
        read_manifest(folder)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="unreadable manifest"):
        read_manifest(folder)
