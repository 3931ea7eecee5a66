"""Each layer kind's fields, read off the models: what the editor's form and the errors use."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.specs import models as m
from app.specs.fields import LayerKindFields, field_names, layer_kind_fields


def test_every_kind_is_described_in_order() -> None:
    assert [entry.kind for entry in layer_kind_fields()] == list(m.LAYER_KINDS)


def test_conv_fields_with_their_types_bounds_and_defaults() -> None:
    conv = next(entry for entry in layer_kind_fields() if entry.kind == "conv")
    described = [(f.name, f.type, f.required, f.default, f.minimum) for f in conv.fields]
    assert described == [
        ("out_channels", "int", True, None, 1),
        ("kernel", "int", True, None, 1),
        ("stride", "int", False, 1, 1),
        ("padding", "int", False, 0, 0),
        ("dilation", "int", False, 1, 1),
        ("groups", "int", False, 1, 1),
        ("bias", "bool", False, True, None),
    ]


def test_a_pools_stride_defaults_to_its_kernel_and_dropouts_p_is_bounded() -> None:
    kinds = {entry.kind: {f.name: f for f in entry.fields} for entry in layer_kind_fields()}
    stride = kinds["maxpool"]["stride"]
    assert (stride.default, stride.default_from) == (None, "kernel")
    p = kinds["dropout"]["p"]
    assert (p.type, p.minimum, p.maximum, p.default) == ("float", 0, 1, 0.5)
    assert kinds["batchnorm"]["eps"].exclusive_minimum == 0
    assert kinds["relu"] == {}


@pytest.mark.parametrize("entry", layer_kind_fields(), ids=lambda entry: entry.kind)
def test_the_described_fields_are_exactly_those_the_model_accepts(entry: LayerKindFields) -> None:
    """Each described field is accepted with a valid value, and nothing else is."""
    sample = {"int": 2, "float": 0.5, "bool": False}
    layer = {"kind": entry.kind, **{f.name: sample[f.type] for f in entry.fields}}
    m.Spec.model_validate(
        {"name": "x", "input": {"height": 8, "width": 8, "channels": 2}, "layers": [layer]}
    )
    with pytest.raises(ValidationError):
        m.Spec.model_validate(
            {
                "name": "x",
                "input": {"height": 8, "width": 8, "channels": 2},
                "layers": [{**layer, "nope": 1}],
            }
        )
    assert field_names(entry.kind) == [f.name for f in entry.fields]
