"""torch -> ONNX: the classifier (image -> logits) and the features model (image -> every conv and
pool layer's output), both with a dynamic batch dimension, checked by onnx.checker.

The features model holds only the layers before the flatten, so it carries the conv weights
(tens of MB) and not the fully connected ones (most of a VGG's 0.5 GB).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from numpy.typing import NDArray
from torch import nn

from app.nets.builder import SpecNet
from app.specs import Spec
from app.specs.models import layer_names

OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
FEATURE_KINDS = frozenset({"conv", "maxpool", "avgpool", "adaptiveavgpool"})
MAX_BATCH = 4096


class ExportError(RuntimeError):
    """The exporter or onnx.checker refused a net."""


@dataclass(frozen=True)
class FeatureLayer:
    """A spec layer the features model outputs, with its output volume (C, H, W)."""

    index: int
    name: str
    kind: str
    channels: int
    height: int
    width: int


class FeaturesNet(nn.Module):
    """The layers before the flatten, returning the output of each conv and pool layer."""

    def __init__(self, layers: Sequence[nn.Module], wanted: Sequence[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers[: max(wanted) + 1])
        self.wanted = frozenset(wanted)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = []
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index in self.wanted:
                outputs.append(x)
        return tuple(outputs)


def layers_before_flatten(net: SpecNet, spec: Spec) -> list[nn.Module]:
    """Spec layers 0..flatten-1 as modules: ``features`` then, if the spec has one, ``avgpool``."""
    kinds = [layer.kind for layer in spec.layers]
    count = kinds.index("flatten") if "flatten" in kinds else len(kinds)
    modules = [*net.features]
    if len(modules) < count:
        modules.append(net.avgpool)
    if len(modules) != count:
        raise ExportError(f"{spec.name}: {len(modules)} feature modules for {count} spec layers")
    return modules


def features_net(net: SpecNet, spec: Spec) -> tuple[FeaturesNet, list[FeatureLayer]]:
    modules = layers_before_flatten(net, spec)
    names = layer_names(spec)
    wanted = [i for i in range(len(modules)) if spec.layers[i].kind in FEATURE_KINDS]
    if not wanted:
        raise ExportError(f"{spec.name}: no conv or pool layer before the flatten")
    model = FeaturesNet(modules, wanted).eval()
    probe = torch.zeros(1, spec.input.channels, spec.input.height, spec.input.width)
    with torch.no_grad():
        shapes = [tuple(output.shape[1:]) for output in model(probe)]
    layers = [
        FeatureLayer(i, names[i], spec.layers[i].kind, *shape)
        for i, shape in zip(wanted, shapes, strict=True)
    ]
    return model, layers


def export(
    module: nn.Module, example: torch.Tensor, path: Path, output_names: Sequence[str]
) -> None:
    """Export with torch's ONNX exporter (torch.export based), batch dynamic, then check."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                opset_version=OPSET,
                input_names=[INPUT_NAME],
                output_names=list(output_names),
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
            if program is None:
                raise ExportError("torch.onnx.export returned no program")
            program.save(str(path), external_data=False)
    except ExportError:
        raise
    except Exception as error:
        raise ExportError(f"ONNX export failed: {str(error).splitlines()[0]}") from error
    check(path)


def check(path: Path) -> None:
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"onnx.checker refused {path.name}: {error}") from None


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence what the exporter says that is not about this model.

    It logs one line per torchvision operator it cannot register (torchvision is not installed
    here, on purpose) and triggers a FutureWarning inside torch's own pytree code.
    """
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec.*")
            yield
    finally:
        logger.setLevel(level)


PARITY_BATCH = 2
PARITY_SEED = 1234


@dataclass(frozen=True)
class Reference:
    """torch's outputs for the random inputs the parity check runs through ONNX Runtime."""

    inputs: NDArray[np.float32]  # (PARITY_BATCH, C, H, W), through the classifier
    logits: NDArray[np.float32]
    features: dict[str, NDArray[np.float32]]  # the features model's outputs for inputs[:1]


def export_pair(
    net: SpecNet, spec: Spec, model_path: Path, features_path: Path
) -> tuple[list[FeatureLayer], Reference]:
    """Export the classifier and the features model, with torch's outputs to check them by."""
    inputs = _random_inputs(spec)
    features, layers = features_net(net, spec)
    export(net, inputs, model_path, [OUTPUT_NAME])
    export(features, inputs[:1], features_path, [layer.name for layer in layers])
    with torch.no_grad():
        logits = net(inputs).numpy()
        maps = {
            layer.name: output.numpy()
            for layer, output in zip(layers, features(inputs[:1]), strict=True)
        }
    return layers, Reference(inputs.numpy(), logits, maps)


def _random_inputs(spec: Spec) -> torch.Tensor:
    generator = torch.Generator().manual_seed(PARITY_SEED)
    shape = (PARITY_BATCH, spec.input.channels, spec.input.height, spec.input.width)
    return torch.randn(shape, generator=generator)
