"""The computed table: one row per layer plus totals; the JSON form the CLI and the API serve.

Kept apart from the arithmetic (layers.py) and from presentation (formatting.py), as torchinfo
keeps its row, its totals and its formatting apart.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from app.specs.models import Volume


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Formula(Frozen):
    """The arithmetic as text with the numbers filled in, true as written (docs/architecture.md,
    "Formulas"): each side of every ``=`` evaluates exactly to the same number, the last side is
    the value, floor ``⌊...⌋`` and ceiling ``⌈...⌉`` stand wherever a division is not exact, and
    a word after a number only names what it counts. ``output`` is None where the layer keeps
    its input's volume (ReLU, LRN, dropout, batch norm) or its size is a setting (linear,
    adaptive pooling)."""

    output: str | None
    params: str | None = None
    macs: str | None = None


# checked: the spec does not take the figure from the lecture, so agreeing is a finding;
# defined: the spec copies it (a lecture net's filters, kernels, strides, input), so it agrees by
# construction and proves nothing.
Basis = Literal["checked", "defined"]


class Verdict(Frozen):
    """A lecture figure beside the exact value: exact, rounded, or differs (and why)."""

    ref: int
    says: str
    quantity: str
    stated: str
    exact: str
    verdict: str
    basis: Basis
    computation: str | None = None
    why: str | None = None


class Unstated(Frozen):
    """A layer of a lecture net whose output volume the lecture never states: the exact one."""

    index: int
    name: str
    exact: str
    computation: str | None


class Warning(Frozen):
    index: int | None
    name: str | None
    code: str
    message: str


class LayerRow(Frozen):
    index: int
    name: str
    kind: str
    input: Volume
    output: Volume
    weights: int
    biases: int
    params: int
    macs: int
    flops: int
    activations: int
    activation_bytes: int
    receptive_field: int
    jump: int | None
    formula: Formula
    notes: list[str]
    lecture: list[Verdict]


class Totals(Frozen):
    params: int
    weights: int
    biases: int
    macs: int
    flops: int
    activations: int
    activation_bytes: int
    conv_params: int
    fc_params: int
    conv_share: float
    fc_share: float
    conv_macs: int
    fc_macs: int
    depth: int


class Table(Frozen):
    id: str | None
    name: str
    input: Volume
    layers: list[LayerRow]
    totals: Totals
    lecture: list[Verdict]
    lecture_unstated: list[Unstated]
    warnings: list[Warning]
