"""The torch builder agrees with the calculator, layer by layer, and with torchvision's layout."""

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.core.calculator import analyze, builtin_table
from app.core.errors import SpecInvalid
from app.core.table import Table
from app.nets.builder import BuildError, SpecNet, build
from app.specs import Spec, builtin_registry

TORCHVISION = Path(__file__).resolve().parents[1] / "golden" / "torchvision"
TORCHVISION_NAMES = {
    "alexnet-torchvision": "alexnet",
    **{f"vgg{n}": f"vgg{n}" for n in (11, 13, 16, 19)},
    **{f"vgg{n}-bn": f"vgg{n}_bn" for n in (11, 13, 16, 19)},
}


def calculator_shapes(table: Table) -> list[tuple[int, ...]]:
    """The calculator's volumes as torch writes them, without the batch: (C, H, W) or (N,)."""
    shapes: list[tuple[int, ...]] = []
    flattened = False
    for row in table.layers:
        flattened = flattened or row.kind == "flatten"
        out = row.output
        shapes.append((out.channels,) if flattened else (out.channels, out.height, out.width))
    return shapes


def torch_shapes(net: SpecNet, spec: Spec) -> list[tuple[int, ...]]:
    x = torch.randn(1, spec.input.channels, spec.input.height, spec.input.width)
    with torch.no_grad():
        return [tuple(output.shape[1:]) for output in net.trace(x)]


def parameter_count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("spec", list(builtin_registry()), ids=lambda spec: spec.id)
def test_every_variant_agrees_with_the_calculator(spec: Spec) -> None:
    table = builtin_table(spec.id or "")
    net = build(spec)
    assert torch_shapes(net, spec) == calculator_shapes(table)
    assert parameter_count(net) == table.totals.params


@pytest.mark.parametrize("spec_id", sorted(TORCHVISION_NAMES))
def test_state_dict_keys_and_shapes_are_torchvisions(spec_id: str) -> None:
    golden = json.loads((TORCHVISION / f"{TORCHVISION_NAMES[spec_id]}.json").read_text())
    net = build(builtin_registry().get(spec_id), seed=None)
    ours = [[key, list(value.shape)] for key, value in net.state_dict().items()]
    assert ours == golden["state_dict"]
    assert parameter_count(net) == golden["num_params"]


@pytest.mark.parametrize("spec_id", sorted(TORCHVISION_NAMES))
def test_weights_metadata_matches_torchvisions(spec_id: str) -> None:
    golden = json.loads((TORCHVISION / f"{TORCHVISION_NAMES[spec_id]}.json").read_text())
    weights = builtin_registry().get(spec_id).weights
    assert weights is not None
    assert weights.url == golden["weights"]["url"]
    assert (weights.acc1, weights.acc5) == (golden["weights"]["acc@1"], golden["weights"]["acc@5"])


def test_torchvision_forward_shapes_match_the_golden_trace() -> None:
    golden = json.loads((TORCHVISION / "alexnet.json").read_text())
    spec = builtin_registry().get("alexnet-torchvision")
    ours = torch_shapes(build(spec), spec)
    golden_shapes = [tuple(entry["shape"][1:]) for entry in golden["output_shapes"]]
    flatten_index = [layer.kind for layer in spec.layers].index("flatten")
    assert ours[:flatten_index] + ours[flatten_index + 1 :] == golden_shapes


def test_seeded_builds_are_reproducible_and_leave_the_global_rng_alone() -> None:
    spec = builtin_registry().get("alexnet-lecture")
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first, second = build(spec, seed=7), build(spec, seed=7)
    assert torch.rand(1) == before
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_builder_names_the_layer_torch_refuses() -> None:
    spec = Spec.model_validate(
        {
            "name": "bad",
            "input": {"height": 4, "width": 4, "channels": 3},
            "layers": [{"kind": "relu"}, {"kind": "conv", "out_channels": 2, "kernel": 9}],
        }
    )
    with pytest.raises(BuildError, match=r"layer 1 \(conv1\): .*Kernel size can't be greater"):
        build(spec)


# Property tests: random specs over the kinds and settings torch checks.

SPATIAL_LAYERS = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("conv"),
            "out_channels": st.sampled_from([1, 2, 3, 4, 6]),
            "kernel": st.integers(1, 7),
        },
        optional={
            "stride": st.integers(1, 4),
            "padding": st.integers(0, 3),
            "dilation": st.integers(1, 3),
            "groups": st.sampled_from([1, 2, 3]),
            "bias": st.booleans(),
        },
    ),
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["maxpool", "avgpool"]), "kernel": st.integers(1, 5)},
        optional={
            "stride": st.integers(1, 4),
            "padding": st.integers(0, 3),
            "ceil_mode": st.booleans(),
        },
    ),
    st.fixed_dictionaries({"kind": st.just("adaptiveavgpool"), "output_size": st.integers(1, 6)}),
    st.fixed_dictionaries({"kind": st.just("lrn"), "size": st.integers(1, 5)}),
    st.fixed_dictionaries({"kind": st.sampled_from(["batchnorm", "relu", "dropout"])}),
)
HEAD_LAYERS = st.one_of(
    st.fixed_dictionaries({"kind": st.just("linear"), "out_features": st.integers(1, 12)}),
    st.fixed_dictionaries({"kind": st.sampled_from(["relu", "dropout", "batchnorm", "softmax"])}),
)


@st.composite
def random_specs(draw: st.DrawFn) -> dict[str, Any]:
    body: list[dict[str, Any]] = draw(st.lists(SPATIAL_LAYERS, min_size=1, max_size=6))
    if draw(st.booleans()):
        body += [{"kind": "flatten"}, *draw(st.lists(HEAD_LAYERS, max_size=3))]
    side = st.integers(1, 24)
    return {
        "name": "random",
        "input": {"height": draw(side), "width": draw(side), "channels": draw(st.integers(1, 6))},
        "layers": body,
    }


def torch_runs(raw: dict[str, Any]) -> tuple[bool, list[tuple[int, ...]], int]:
    """Build with torch and run a real forward pass on the CPU; (ran, shapes, params)."""
    spec = Spec.model_validate(raw)
    try:
        net = build(spec)
        return True, torch_shapes(net, spec), parameter_count(net)
    except (BuildError, RuntimeError, ValueError):
        return False, [], 0


PROPERTY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(random_specs())
def test_calculator_accepts_exactly_the_specs_torch_runs(raw: dict[str, Any]) -> None:
    ran, shapes, params = torch_runs(raw)
    try:
        table = analyze(raw)
    except SpecInvalid:
        event("refused by both")
        assert not ran, "the calculator refused a spec torch runs"
        return
    event("accepted by both")
    assert ran, "the calculator accepted a spec torch cannot run"
    assert shapes == calculator_shapes(table)
    assert params == table.totals.params


@PROPERTY
@given(random_specs().filter(lambda raw: raw["input"]["height"] >= 16))
def test_random_valid_specs_agree_with_torch(raw: dict[str, Any]) -> None:
    try:
        table = analyze(raw)
    except SpecInvalid:
        return
    ran, shapes, params = torch_runs(raw)
    assert ran
    assert (shapes, params) == (calculator_shapes(table), table.totals.params)
