"""Where one unit of a conv or pool layer looks in the net's input, as boxes to draw.

The calculator gives each layer's receptive field (RF) and jump (the input pixels between
neighbouring units). What a box needs besides is where the first unit's field starts, which the
padding moves: start_L = start_(L-1) - padding_L * jump_(L-1), from 0 at the input. Unit i of the
layer then sees input pixels start + i * jump to start + i * jump + RF - 1 (along each axis;
negative or past the input: the zero padding).

Pure Python: the receptive fields and jumps are the calculator's rows.
"""

from __future__ import annotations

from app.core.table import Frozen, Table
from app.specs import models as m

WINDOW_KINDS = frozenset({"conv", "maxpool", "avgpool"})


class UnitField(Frozen):
    index: int
    name: str
    kind: str
    output: m.Volume
    receptive_field: int
    jump: int
    start: int


def _padding(layer: m.Layer) -> int | None:
    """The layer's padding; None where its windows are not one regular grid."""
    if isinstance(layer, m.Conv | m.MaxPool | m.AvgPool):
        return layer.padding
    if isinstance(layer, m.AdaptiveAvgPool):
        return None
    return 0  # ReLU, LRN, batch norm, dropout: each unit sees what the unit before it saw


def unit_fields(spec: m.Spec, table: Table) -> list[UnitField]:
    """Each conv and pool layer before flatten, up to the first irregular window (an adaptive
    pool that is not the identity), with its RF, jump and start."""
    found: list[UnitField] = []
    start, jump = 0, 1
    for layer, row in zip(spec.layers, table.layers, strict=True):
        if row.jump is None:
            break  # flatten: a unit sees the whole map
        padding = _padding(layer)
        if padding is None:
            if row.input != row.output:
                break
            padding = 0  # an adaptive pool to its own size is the identity
        start -= padding * jump
        jump = row.jump
        if row.kind in WINDOW_KINDS:
            found.append(
                UnitField(
                    index=row.index,
                    name=row.name,
                    kind=row.kind,
                    output=row.output,
                    receptive_field=row.receptive_field,
                    jump=row.jump,
                    start=start,
                )
            )
    return found
