"""Family files: one configuration table and one interpreter, in the manner of torchvision's vgg.py.

A family file declares what its variants share (source, input, head, the conv and pool layers of
the stack) and a configuration per variant: a list of filter counts with "M" for a pool. This
module expands each variant into a plain spec dict; nothing in the file is code.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt

from app.specs.models import LectureFigure, Source, Strict, Volume, Weights

StackEntry = Annotated[StrictInt, Field(ge=1)] | Literal["M"]


class Stack(Strict):
    conv: dict[str, Any]
    pool: dict[str, Any]


class Variant(Strict):
    id: str
    name: str
    config: str
    batch_norm: StrictBool
    weights: Weights | None = None
    lecture: list[LectureFigure] = Field(default_factory=list)
    layer_lecture: dict[str, list[LectureFigure]] = Field(default_factory=dict)


class Family(Strict):
    family: str
    year: StrictInt
    source: Source
    input: Volume
    notes: list[str] = Field(default_factory=list)
    stack: Stack
    configs: dict[str, list[StackEntry]]
    head: list[dict[str, Any]]
    variants: list[Variant]


def expand_stack(stack: Stack, config: list[StackEntry], batch_norm: bool) -> list[dict[str, Any]]:
    """The one interpreter: filter counts become conv (+ batchnorm) + relu, "M" becomes a pool.

    Names follow the papers' stage numbering: conv3_2 is the second conv of the third stage.
    """
    layers: list[dict[str, Any]] = []
    stage, position = 1, 0
    for entry in config:
        if entry == "M":
            layers.append({**stack.pool, "name": f"pool{stage}"})
            stage, position = stage + 1, 0
            continue
        position += 1
        tag = f"{stage}_{position}"
        layers.append({**stack.conv, "name": f"conv{tag}", "out_channels": entry})
        if batch_norm:
            layers.append({"kind": "batchnorm", "name": f"bn{tag}"})
        layers.append({"kind": "relu", "name": f"relu{tag}"})
    return layers


def _with_layer_lecture(
    layers: list[dict[str, Any]], figures: dict[str, list[LectureFigure]]
) -> list[dict[str, Any]]:
    known = {layer["name"] for layer in layers}
    unknown = sorted(set(figures) - known)
    if unknown:
        raise ValueError(f"layer_lecture names layers that do not exist: {', '.join(unknown)}")
    return [
        {**layer, "lecture": [f.model_dump(exclude_none=True) for f in figures[layer["name"]]]}
        if layer["name"] in figures
        else layer
        for layer in layers
    ]


def expand_family(family: Family) -> list[dict[str, Any]]:
    """Every variant of the family as a plain spec dict, ready for ``Spec.model_validate``."""
    specs = []
    for variant in family.variants:
        if variant.config not in family.configs:
            raise ValueError(f"variant {variant.id!r} names unknown config {variant.config!r}")
        stack = expand_stack(family.stack, family.configs[variant.config], variant.batch_norm)
        layers = _with_layer_lecture(stack + family.head, variant.layer_lecture)
        spec: dict[str, Any] = {
            "id": variant.id,
            "name": variant.name,
            "family": family.family,
            "year": family.year,
            "source": family.source.model_dump(),
            "input": family.input.model_dump(),
            "notes": list(family.notes),
            "lecture": [f.model_dump(exclude_none=True) for f in variant.lecture],
            "layers": layers,
        }
        if variant.weights is not None:
            spec["weights"] = variant.weights.model_dump(exclude_none=True)
        specs.append(spec)
    return specs
