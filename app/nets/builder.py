"""Spec -> torch.nn.Module, with torchvision's module names.

The module has torchvision's three parts: ``features`` (everything before the flatten, less a
trailing adaptive pool), ``avgpool`` and ``classifier`` (everything after the flatten), so that
for alexnet-torchvision and the VGGs the state_dict keys and shapes are torchvision's and its
published checkpoints load with strict=True.

The builder sizes each layer by running a probe tensor on torch's meta device, not by asking the
calculator: torch is the independent judge the calculator's tests compare against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from app.specs import models as m

DEFAULT_SEED = 0


class BuildError(ValueError):
    """torch refused a layer: names the layer (index and name) and torch's own message."""

    def __init__(self, index: int, name: str, message: str) -> None:
        super().__init__(f"layer {index} ({name}): {message}")
        self.index = index
        self.name = name


class SpecNet(nn.Module):
    """features -> avgpool -> flatten -> classifier, like torchvision's AlexNet and VGG."""

    def __init__(self, spec: m.Spec, modules: list[nn.Module]) -> None:
        super().__init__()
        kinds = [layer.kind for layer in spec.layers]
        flat_at = kinds.index("flatten") if "flatten" in kinds else len(kinds)
        pool_at = flat_at - 1 if flat_at > 0 and kinds[flat_at - 1] == "adaptiveavgpool" else None
        feature_end = pool_at if pool_at is not None else flat_at
        self.spec_name = spec.name
        self.features = nn.Sequential(*modules[:feature_end])
        self.avgpool: nn.Module = modules[pool_at] if pool_at is not None else nn.Identity()
        self.flatten: nn.Module = modules[flat_at] if flat_at < len(kinds) else nn.Identity()
        self.classifier = nn.Sequential(*modules[flat_at + 1 :])
        self._ordered = modules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = self.flatten(x)
        result: torch.Tensor = self.classifier(x)
        return result

    def trace(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """The output of every spec layer in order (the same modules forward() runs)."""
        for module in self._ordered:
            x = module(x)
            yield x


def _batchnorm(layer: m.BatchNorm, probe: torch.Tensor) -> nn.Module:
    norm = nn.BatchNorm2d if probe.dim() == 4 else nn.BatchNorm1d
    return norm(probe.shape[1], eps=layer.eps)


def _linear(layer: m.Linear, probe: torch.Tensor) -> nn.Module:
    if probe.dim() != 2:
        raise RuntimeError("linear layer before flatten: add a flatten layer first")
    return nn.Linear(probe.shape[1], layer.out_features, bias=layer.bias)


FACTORIES: dict[str, Callable[..., nn.Module]] = {
    "conv": lambda layer, probe: nn.Conv2d(
        probe.shape[1],
        layer.out_channels,
        layer.kernel,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        groups=layer.groups,
        bias=layer.bias,
    ),
    "maxpool": lambda layer, _: nn.MaxPool2d(
        layer.kernel, layer.stride or layer.kernel, layer.padding, ceil_mode=layer.ceil_mode
    ),
    "avgpool": lambda layer, _: nn.AvgPool2d(
        layer.kernel, layer.stride or layer.kernel, layer.padding, ceil_mode=layer.ceil_mode
    ),
    "adaptiveavgpool": lambda layer, _: nn.AdaptiveAvgPool2d(
        (layer.output_size, layer.output_size)
    ),
    "lrn": lambda layer, _: nn.LocalResponseNorm(layer.size, layer.alpha, layer.beta, layer.k),
    "batchnorm": _batchnorm,
    "relu": lambda _layer, _probe: nn.ReLU(),
    "dropout": lambda layer, _: nn.Dropout(layer.p),
    "flatten": lambda _layer, _probe: nn.Flatten(1),
    "linear": _linear,
    "softmax": lambda _layer, _probe: nn.Softmax(dim=1),
}


def _modules_on_meta(spec: m.Spec) -> list[nn.Module]:
    """Build every module on the meta device, sizing each by torch's own shape inference."""
    shape = (1, spec.input.channels, spec.input.height, spec.input.width)
    probe = torch.zeros(shape, device="meta")
    modules = []
    for index, (layer, name) in enumerate(zip(spec.layers, m.layer_names(spec), strict=True)):
        try:
            with torch.device("meta"):
                module = FACTORIES[layer.kind](layer, probe)
            probe = module.eval()(probe)  # eval: BatchNorm on one sample must not need a batch
        except (RuntimeError, ValueError) as error:
            raise BuildError(index, name, str(error).splitlines()[0]) from None
        modules.append(module)
    return modules


def _initialise(net: nn.Module, seed: int) -> None:
    """torch's default initialisation of every layer, drawn from one seeded generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in net.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()


def build(spec: m.Spec, seed: int | None = DEFAULT_SEED) -> SpecNet:
    """The spec as an eval-mode module; seeded random weights, or uninitialised if seed is None.

    Pass ``seed=None`` only when a state_dict is loaded straight after.
    """
    net = SpecNet(spec, _modules_on_meta(spec))
    net.to_empty(device="cpu")
    if seed is not None:
        _initialise(net, seed)
    return net.eval()
