"""Where one unit looks: each layer's start, with the calculator's RF and jump, gives the same
input pixels as mapping the unit back through every window by hand."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.calculator import analyze, builtin_table, validate_spec
from app.core.errors import SpecInvalid
from app.core.receptive import unit_fields
from app.specs import builtin_registry


def test_alexnet_torchvisions_padding_moves_the_start() -> None:
    fields = unit_fields(
        builtin_registry().get("alexnet-torchvision"), builtin_table("alexnet-torchvision")
    )
    found = {field.name: (field.receptive_field, field.jump, field.start) for field in fields}
    assert found["conv1"] == (11, 4, -2)  # padding 2 at jump 1
    assert found["conv2"] == (51, 8, -2 - 2 * 8)  # padding 2 at pool1's jump 8
    assert found["pool5"] == (195, 32, -66)


def test_vgg16s_pool5_unit_is_centred_on_its_stride_grid() -> None:
    fields = unit_fields(builtin_registry().get("vgg16"), builtin_table("vgg16"))
    pool5 = fields[-1]
    assert (pool5.name, pool5.receptive_field, pool5.jump, pool5.start) == ("pool5", 212, 32, -90)
    assert pool5.start + (pool5.receptive_field - 1) / 2 == (32 - 1) / 2  # centre 15.5


def _back(layers: list[dict[str, Any]], upto: int, unit: int) -> tuple[int, int]:
    """The input pixels unit ``unit`` of layer ``upto`` sees, mapped back window by window."""
    low = high = unit
    for layer in reversed(layers[: upto + 1]):
        if layer["kind"] == "relu":
            continue
        default = 1 if layer["kind"] == "conv" else layer["kernel"]  # torch's defaults
        stride = layer.get("stride") or default
        padding = layer.get("padding", 0)
        low, high = low * stride - padding, high * stride - padding + layer["kernel"] - 1
    return low, high


LAYER = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.just("conv"), "out_channels": st.just(2), "kernel": st.integers(1, 7)},
        optional={"stride": st.integers(1, 4), "padding": st.integers(0, 3)},
    ),
    st.fixed_dictionaries(
        {"kind": st.just("maxpool"), "kernel": st.integers(1, 4)},
        optional={"stride": st.integers(1, 3), "padding": st.integers(0, 1)},
    ),
    st.just({"kind": "relu"}),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers=st.lists(LAYER, min_size=1, max_size=6), side=st.integers(16, 200), data=st.data())
def test_start_jump_and_rf_agree_with_the_windows(
    layers: list[dict[str, Any]], side: int, data: st.DataObject
) -> None:
    raw = {"name": "r", "input": {"height": side, "width": side, "channels": 2}, "layers": layers}
    try:
        table = analyze(raw)
    except SpecInvalid:
        return
    for field in unit_fields(validate_spec(raw), table):
        unit = data.draw(st.integers(0, field.output.width - 1))
        low, high = _back(layers, field.index, unit)
        assert (field.start + unit * field.jump, high - low + 1) == (low, field.receptive_field)
