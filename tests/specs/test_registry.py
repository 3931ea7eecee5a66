"""The registry: every built-in net loads, ids are fixed and unique; a user's spec needs little."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.specs import Spec, builtin_registry
from app.specs.registry import (
    DuplicateSpecError,
    Registry,
    SpecFileError,
    UnknownSpecError,
    load_file,
)

FIXED_IDS = {
    "alexnet-lecture",
    "zfnet-lecture",
    "alexnet-2012",
    "alexnet-torchvision",
    "zfnet-2013",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg11-bn",
    "vgg13-bn",
    "vgg16-bn",
    "vgg19-bn",
}

# The minimal example, verbatim: it must be accepted as is.
MINIMAL = json.loads(
    (Path(__file__).resolve().parents[1] / "golden" / "specs" / "tiny.json").read_text()
)


def test_the_thirteen_fixed_ids_are_registered() -> None:
    assert set(builtin_registry().ids()) == FIXED_IDS


@pytest.mark.parametrize("spec", list(builtin_registry()), ids=lambda s: s.id)
def test_every_builtin_spec_carries_its_metadata(spec: Spec) -> None:
    assert spec.name
    assert spec.family
    assert spec.year
    assert spec.source is not None
    assert spec.source.url.startswith("https://")
    assert spec.notes, "each net explains its conventions in notes"


def test_minimal_user_spec_is_accepted_as_is_with_torch_defaults() -> None:
    spec = Spec.model_validate(MINIMAL)
    conv = spec.layers[0]
    assert conv.kind == "conv"
    assert (conv.stride, conv.padding, conv.dilation, conv.groups, conv.bias) == (1, 0, 1, 1, True)
    assert spec.layers[2].stride == 2
    assert spec.id is None


def test_registry_refuses_duplicate_ids() -> None:
    spec = builtin_registry().get("vgg16")
    registry = Registry([spec])
    with pytest.raises(DuplicateSpecError, match="vgg16"):
        registry.add(spec)


def test_unknown_id_names_the_known_ids() -> None:
    with pytest.raises(UnknownSpecError) as caught:
        builtin_registry().get("resnet50")
    assert "resnet50" in str(caught.value)
    assert "alexnet-lecture" in str(caught.value)
    assert caught.value.known == builtin_registry().ids()


def test_a_broken_spec_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    broken = dict(MINIMAL, id="broken", layers=[{"kind": "conv", "out_channels": 8}])
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(
        SpecFileError, match=r"(?s)broken\.json.*layers\.0\.conv\.kernel.*Field required"
    ):
        load_file(path)


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        ({"kind": "conv", "out_channels": True, "kernel": 3}, "out_channels"),
        ({"kind": "conv", "out_channels": "64", "kernel": 3}, "out_channels"),
        ({"kind": "conv", "out_channels": 64.0, "kernel": 3}, "out_channels"),
        ({"kind": "conv", "out_channels": 64, "kernel": 3, "strides": 2}, "strides"),
        ({"kind": "lrn", "size": 5, "alpha": float("nan")}, "alpha"),
        ({"kind": "dropout", "p": float("inf")}, "p"),
    ],
)
def test_types_are_strict_and_unknown_keys_refused(layer: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Spec.model_validate(dict(MINIMAL, layers=[layer]))
    assert caught.value.errors()[0]["loc"][-1] == field


def test_vgg_family_expands_like_torchvisions_make_layers() -> None:
    spec = builtin_registry().get("vgg11-bn")
    kinds = [layer.kind for layer in spec.layers[:5]]
    assert kinds == ["conv", "batchnorm", "relu", "maxpool", "conv"]
    assert [layer.name for layer in spec.layers[:4]] == ["conv1_1", "bn1_1", "relu1_1", "pool1"]
