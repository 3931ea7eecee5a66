"""The nets as data: the pydantic models every spec file and every user's spec is validated by.

A user's own spec needs only ``name``, ``input`` and ``layers``; every layer field that is not a
net's defining number takes torch's default. Types are strict (``true``, ``"64"`` and ``64.0``
are not integers) and unknown keys are refused, so a typo never silently becomes a default.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
LayerName = Annotated[str, Field(min_length=1, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Volume(Strict):
    """A W x H x D volume, stored height first like torch's (C, H, W) without the batch."""

    height: PositiveInt
    width: PositiveInt
    channels: PositiveInt


class LectureFigure(Strict):
    """A figure the lecture states, attached to the layer or the total it speaks of.

    ``value`` is the figure as stated: a volume ``[h, w, d]`` for ``input``/``output``, else a
    count, optionally in ``unit`` with ``decimals`` as spoken ("27.55 million"). ``factors`` is the
    alternative for a product the lecture reads out ("11 x 11 x 3 x 96"). ``why`` explains a figure
    that does not follow from the exact arithmetic.
    """

    ref: PositiveInt
    says: str
    quantity: Literal[
        "input",
        "output",
        "output_width",
        "filters",
        "kernel",
        "stride",
        "weights",
        "params",
        "activations",
        "total_params",
        "conv_params",
        "fc_params",
        "depth",
        "conv_kernel",
    ]
    value: list[PositiveInt] | StrictInt | FiniteFloat | None = None
    factors: list[PositiveInt] | None = None
    unit: Literal["million"] | None = None
    decimals: NonNegativeInt = 0
    why: str | None = None

    @model_validator(mode="after")
    def _one_value_of_the_right_shape(self) -> LectureFigure:
        if (self.value is None) == (self.factors is None):
            raise ValueError("give exactly one of 'value' and 'factors'")
        is_volume = isinstance(self.value, list)
        if self.quantity in VOLUME_QUANTITIES:
            if not isinstance(self.value, list) or len(self.value) != 3:
                raise ValueError(f"{self.quantity} is a volume: give 'value' as [h, w, d]")
        elif is_volume:
            raise ValueError(f"{self.quantity} is a count: give a number, not a list")
        return self


VOLUME_QUANTITIES = frozenset({"input", "output"})
LAYER_QUANTITIES = frozenset(
    {
        "input",
        "output",
        "output_width",
        "filters",
        "kernel",
        "stride",
        "weights",
        "params",
        "activations",
    }
)
SPEC_QUANTITIES = frozenset(
    {"input", "total_params", "conv_params", "fc_params", "depth", "conv_kernel"}
)


def _check_level(figures: list[LectureFigure], allowed: frozenset[str], level: str) -> None:
    for figure in figures:
        if figure.quantity not in allowed:
            choices = ", ".join(sorted(allowed))
            raise ValueError(
                f"quantity {figure.quantity!r} does not apply to a {level}; use one of {choices}"
            )


class LayerBase(Strict):
    name: LayerName | None = None
    notes: list[str] = Field(default_factory=list)
    lecture: list[LectureFigure] = Field(default_factory=list)

    @field_validator("lecture")
    @classmethod
    def _figures_fit_this_layer(cls, figures: list[LectureFigure]) -> list[LectureFigure]:
        _check_level(figures, LAYER_QUANTITIES, "layer")
        has_window = "kernel" in cls.model_fields
        if not has_window and any(f.quantity in {"kernel", "stride"} for f in figures):
            raise ValueError("kernel and stride figures need a conv or pooling layer")
        return figures


class Conv(LayerBase):
    kind: Literal["conv"]
    out_channels: PositiveInt
    kernel: PositiveInt
    stride: PositiveInt = 1
    padding: NonNegativeInt = 0
    dilation: PositiveInt = 1
    groups: PositiveInt = 1
    bias: StrictBool = True


class MaxPool(LayerBase):
    kind: Literal["maxpool"]
    kernel: PositiveInt
    stride: PositiveInt | None = None  # torch's default: the kernel size
    padding: NonNegativeInt = 0
    ceil_mode: StrictBool = False


class AvgPool(LayerBase):
    kind: Literal["avgpool"]
    kernel: PositiveInt
    stride: PositiveInt | None = None
    padding: NonNegativeInt = 0
    ceil_mode: StrictBool = False


class AdaptiveAvgPool(LayerBase):
    kind: Literal["adaptiveavgpool"]
    output_size: PositiveInt


class LRN(LayerBase):
    kind: Literal["lrn"]
    size: PositiveInt
    alpha: FiniteFloat = 1e-4
    beta: FiniteFloat = 0.75
    k: FiniteFloat = 1.0


class BatchNorm(LayerBase):
    kind: Literal["batchnorm"]
    eps: Annotated[FiniteFloat, Field(gt=0)] = 1e-5


class ReLU(LayerBase):
    kind: Literal["relu"]


class Dropout(LayerBase):
    kind: Literal["dropout"]
    p: Annotated[FiniteFloat, Field(ge=0, le=1)] = 0.5


class Flatten(LayerBase):
    kind: Literal["flatten"]


class Linear(LayerBase):
    kind: Literal["linear"]
    out_features: PositiveInt
    bias: StrictBool = True


class Softmax(LayerBase):
    kind: Literal["softmax"]


Layer = Annotated[
    Conv
    | MaxPool
    | AvgPool
    | AdaptiveAvgPool
    | LRN
    | BatchNorm
    | ReLU
    | Dropout
    | Flatten
    | Linear
    | Softmax,
    Field(discriminator="kind"),
]
LayerKind = Literal[
    "conv",
    "maxpool",
    "avgpool",
    "adaptiveavgpool",
    "lrn",
    "batchnorm",
    "relu",
    "dropout",
    "flatten",
    "linear",
    "softmax",
]
LAYER_KINDS: tuple[str, ...] = get_args(LayerKind)
PARAMETRIC_KINDS = frozenset({"conv", "linear"})


class Source(Strict):
    citation: str
    url: str


class ReportedError(Strict):
    """A top-5 error measured for exactly this net, with who measured it and on what."""

    value: Annotated[FiniteFloat, Field(ge=0, le=100)]
    source: Annotated[str, Field(min_length=1)]
    note: str | None = None


class Weights(Strict):
    """Where published ImageNet weights for this variant live (torchvision's checkpoint)."""

    url: str
    acc1: FiniteFloat
    acc5: FiniteFloat
    note: str | None = None


class Spec(Strict):
    """One net. Built-in nets carry the metadata; a user's spec may leave all of it out.

    ``simplifies`` marks the lecture's own version of a published net (its id): its settings
    (input, filters, kernels, strides) are the lecture's, so a lecture figure about one of them
    agrees by construction ("defined", not "checked"), and it was never trained or entered in a
    competition, so it has no ``top5_error`` of its own.
    """

    id: str | None = None
    name: Annotated[str, Field(min_length=1, max_length=64)]
    family: str | None = None
    year: StrictInt | None = None
    source: Source | None = None
    simplifies: str | None = None
    input: Volume
    top5_error: ReportedError | None = None
    weights: Weights | None = None
    notes: list[str] = Field(default_factory=list)
    lecture: list[LectureFigure] = Field(default_factory=list)
    layers: Annotated[list[Layer], Field(min_length=1)]

    @field_validator("lecture")
    @classmethod
    def _figures_fit_a_whole_net(cls, figures: list[LectureFigure]) -> list[LectureFigure]:
        _check_level(figures, SPEC_QUANTITIES, "whole net")
        return figures

    @model_validator(mode="after")
    def _a_simplification_has_no_error_of_its_own(self) -> Spec:
        if self.simplifies is not None and self.top5_error is not None:
            raise ValueError(
                f"a net that simplifies {self.simplifies!r} was never trained or entered: "
                "give it no top5_error (its page shows that of the net it simplifies)"
            )
        return self


def layer_names(spec: Spec) -> list[str]:
    """Each layer's given name, or kind + running count ("conv1", "relu3") when it has none."""
    counts: Counter[str] = Counter()
    names = []
    for layer in spec.layers:
        counts[layer.kind] += 1
        names.append(layer.name or f"{layer.kind}{counts[layer.kind]}")
    return names
