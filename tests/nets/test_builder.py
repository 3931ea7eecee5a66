"""The torch builder agrees with the calculator, layer by layer, and with torchvision's layout.

torch is the judge here, asked as it reports itself: forward hooks on every module the net's own
forward() runs give each layer's output shape, its parameters' ``numel()``, and the FLOPs that
``torch.utils.flop_counter.FlopCounterMode`` counts while it runs. FlopCounterMode counts the
matrix products of conv and linear layers, 2 FLOPs per multiply-accumulate and no bias, and
nothing for pools, ReLU, LRN, BatchNorm, dropout or softmax: exactly the calculator's MACs times
two. torchvision's own trace and operation counts (tests/golden/torchvision/) judge both sides.
"""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

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


def torchvision_golden(spec_id: str) -> dict[str, Any]:
    golden: dict[str, Any] = json.loads(
        (TORCHVISION / f"{TORCHVISION_NAMES[spec_id]}.json").read_text()
    )
    return golden


@dataclass(frozen=True)
class TorchLayer:
    """One module as torch ran it in the net's forward()."""

    module: str  # its qualified name in the net, as in the state_dict: "features.0"
    type: str  # its class: "Conv2d"
    shape: tuple[int, ...]  # its output without the batch: (C, H, W) or (N,)
    weights: int  # weight.numel(), 0 without one
    biases: int  # bias.numel(), 0 without one
    params: int  # the sum of numel() over all its parameters
    macs: int  # FlopCounterMode's FLOPs while it ran, halved


def as_torch_reports(name: str, module: nn.Module, output: torch.Tensor, flops: int) -> TorchLayer:
    assert flops % 2 == 0, f"{name}: {flops} FLOPs is not a whole number of MACs"
    weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
    return TorchLayer(
        module=name,
        type=type(module).__name__,
        shape=tuple(output.shape[1:]),
        weights=0 if weight is None else weight.numel(),
        biases=0 if bias is None else bias.numel(),
        params=sum(p.numel() for p in module.parameters()),
        macs=flops // 2,
    )


def torch_layers(net: SpecNet, spec: Spec) -> list[TorchLayer]:
    """Run ``net`` on a random input: every leaf module forward() calls, in the order called.

    Containers and the Identity placeholders (no adaptive pool, no flatten) are not layers.
    """
    counter = FlopCounterMode(display=False)
    ran: list[TorchLayer] = []
    flops_before: list[int] = []

    def before(*_: object) -> None:
        flops_before.append(counter.get_total_flops())

    def after(name: str, module: nn.Module, output: torch.Tensor) -> None:
        flops = counter.get_total_flops() - flops_before.pop()
        ran.append(as_torch_reports(name, module, output, flops))

    handles = []
    for name, module in net.named_modules():
        if list(module.children()) or isinstance(module, nn.Identity | nn.Sequential):
            continue
        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(lambda m, _, y, name=name: after(name, m, y)))
    x = torch.randn(1, spec.input.channels, spec.input.height, spec.input.width)
    try:
        with torch.no_grad(), counter:
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    return ran


def calculator_shapes(table: Table) -> list[tuple[int, ...]]:
    """The calculator's volumes as torch writes them, without the batch: (C, H, W) or (N,)."""
    shapes: list[tuple[int, ...]] = []
    flattened = False
    for row in table.layers:
        flattened = flattened or row.kind == "flatten"
        out = row.output
        shapes.append((out.channels,) if flattened else (out.channels, out.height, out.width))
    return shapes


def assert_layers_agree(ran: list[TorchLayer], table: Table) -> None:
    """Layer by layer: output shape, weights, biases, all parameters and MACs, then the totals."""
    assert len(ran) == len(table.layers), [layer.module for layer in ran]
    for layer, row, shape in zip(ran, table.layers, calculator_shapes(table), strict=True):
        ours = (row.name, shape, row.weights, row.biases, row.params, row.macs)
        torchs = (row.name, layer.shape, layer.weights, layer.biases, layer.params, layer.macs)
        assert torchs == ours, f"layer {row.index} ({row.name}) is torch's {layer.module}"
    assert sum(layer.params for layer in ran) == table.totals.params
    assert sum(layer.macs for layer in ran) == table.totals.macs


def parameter_count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@cache
def builtin_torch_layers(spec_id: str) -> list[TorchLayer]:
    """Each built-in net run once per test session, and only what it reported kept."""
    spec = builtin_registry().get(spec_id)
    return torch_layers(build(spec), spec)


@pytest.mark.parametrize("spec_id", builtin_registry().ids())
def test_every_layer_of_every_variant_agrees_with_torch(spec_id: str) -> None:
    assert_layers_agree(builtin_torch_layers(spec_id), builtin_table(spec_id))


@pytest.mark.parametrize("spec_id", sorted(TORCHVISION_NAMES))
def test_torchs_trace_is_torchvisions(spec_id: str) -> None:
    """Every module torchvision's own net runs, with its name, type and output shape."""
    golden = torchvision_golden(spec_id)["output_shapes"]
    expected = [(entry["module"], entry["type"], tuple(entry["shape"][1:])) for entry in golden]
    ran = builtin_torch_layers(spec_id)
    # torchvision flattens with torch.flatten, not a module; ours is nn.Flatten.
    ours = [(layer.module, layer.type, layer.shape) for layer in ran if layer.module != "flatten"]
    assert ours == expected


@pytest.mark.parametrize("spec_id", sorted(TORCHVISION_NAMES))
def test_the_calculator_has_torchvisions_shapes_params_and_operations(spec_id: str) -> None:
    golden = torchvision_golden(spec_id)
    table = builtin_table(spec_id)
    shapes = zip(calculator_shapes(table), table.layers, strict=True)
    kept = [shape for shape, row in shapes if row.kind != "flatten"]
    assert kept == [tuple(entry["shape"][1:]) for entry in golden["output_shapes"]]
    assert table.totals.params == golden["num_params"] == golden["weights"]["num_params"]
    # torchvision's "GFLOPS" (_ops) are multiply-accumulates in billions, to 3 decimals.
    assert round(table.totals.macs / 1e9, 3) == golden["weights"]["_ops"]


@pytest.mark.parametrize("spec_id", sorted(TORCHVISION_NAMES))
def test_state_dict_keys_and_shapes_are_torchvisions(spec_id: str) -> None:
    golden = torchvision_golden(spec_id)
    net = build(builtin_registry().get(spec_id), seed=None)
    ours = [[key, list(value.shape)] for key, value in net.state_dict().items()]
    assert ours == golden["state_dict"]
    assert parameter_count(net) == golden["num_params"]


@pytest.mark.parametrize("spec_id", sorted(TORCHVISION_NAMES))
def test_weights_metadata_matches_torchvisions(spec_id: str) -> None:
    golden = torchvision_golden(spec_id)
    weights = builtin_registry().get(spec_id).weights
    assert weights is not None
    assert weights.url == golden["weights"]["url"]
    assert (weights.acc1, weights.acc5) == (golden["weights"]["acc@1"], golden["weights"]["acc@5"])


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
def random_specs(draw: st.DrawFn, min_side: int = 1, fitting: bool = False) -> dict[str, Any]:
    """Specs over every kind and setting torch checks, with sides from ``min_side`` to 24.

    ``fitting`` draws what the layer before allows (groups that divide the channels, pool
    padding of at most half the kernel), so that most specs run; the rest are discarded.
    """
    side = st.integers(min_side, 24)
    volume = {"height": draw(side), "width": draw(side), "channels": draw(st.integers(1, 6))}
    channels = volume["channels"]
    body: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 6))):
        layer = draw(SPATIAL_LAYERS)
        if fitting and layer["kind"] == "conv":
            groups = draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))
            layer.update(groups=groups, out_channels=groups * draw(st.integers(1, 2)))
        if fitting and layer["kind"] in {"maxpool", "avgpool"}:
            layer["padding"] = draw(st.integers(0, layer["kernel"] // 2))
        channels = layer.get("out_channels", channels)
        body.append(layer)
    if draw(st.booleans()):
        body += [{"kind": "flatten"}, *draw(st.lists(HEAD_LAYERS, max_size=3))]
    return {"name": "random", "input": volume, "layers": body}


def torch_runs(raw: dict[str, Any]) -> list[TorchLayer] | None:
    """Build with torch and run a real forward pass on the CPU; None if torch refuses."""
    spec = Spec.model_validate(raw)
    try:
        return torch_layers(build(spec), spec)
    except (BuildError, RuntimeError, ValueError):
        return None


PROPERTY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(random_specs())
def test_calculator_accepts_exactly_the_specs_torch_runs(raw: dict[str, Any]) -> None:
    ran = torch_runs(raw)
    try:
        table: Table | None = analyze(raw)
    except SpecInvalid:
        table = None
    event("refused by the calculator" if table is None else "accepted by the calculator")
    if table is None:
        assert ran is None, "the calculator refused a spec torch runs"
    else:
        assert ran is not None, "the calculator accepted a spec torch cannot run"
        assert_layers_agree(ran, table)


def valid_table(raw: dict[str, Any]) -> Table | None:
    try:
        return analyze(raw)
    except SpecInvalid:
        return None


@PROPERTY
@given(random_specs(min_side=16, fitting=True))
def test_random_valid_specs_agree_with_torch_layer_by_layer(raw: dict[str, Any]) -> None:
    table = valid_table(raw)
    assume(table is not None)  # Hypothesis counts the discards and fails if they are too many
    assert table is not None
    ran = torch_runs(raw)
    assert ran is not None, "torch refused a spec the calculator accepts"
    assert_layers_agree(ran, table)
