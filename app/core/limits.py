"""Limits on a user's spec, checked before anything is built.

The calculator's arithmetic is cheap at any size (Python integers), but a spec that is accepted
can be exported and run, so the server bounds it: sizes per field first, then the totals the
calculator derives (parameters, activations per layer, MACs), all without allocating anything.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import SpecInvalid, SpecIssue
from app.core.table import Table
from app.specs import models as m


class SpecLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_layers: int = Field(default=128, ge=1)
    max_side: int = Field(default=4096, ge=1)
    max_channels: int = Field(default=8192, ge=1)
    max_kernel: int = Field(default=31, ge=1)
    max_stride: int = Field(default=16, ge=1)
    max_dilation: int = Field(default=8, ge=1)
    max_features: int = Field(default=65_536, ge=1)
    max_params: int = Field(default=1_000_000_000, ge=1)
    max_layer_activations: int = Field(default=100_000_000, ge=1)
    max_macs: int = Field(default=1_000_000_000_000, ge=1)


def _bounded(
    value: int | None, limit: int, index: int | None, name: str | None, field: str
) -> list[SpecIssue]:
    if value is None or value <= limit:
        return []
    message = f"{value:,} is over the limit of {limit:,}"
    return [SpecIssue(index=index, name=name, field=field, message=message)]


def _layer_fields(layer: m.Layer, limits: SpecLimits) -> list[tuple[str, int | None, int]]:
    if isinstance(layer, m.Conv):
        return [
            ("out_channels", layer.out_channels, limits.max_channels),
            ("kernel", layer.kernel, limits.max_kernel),
            ("stride", layer.stride, limits.max_stride),
            ("padding", layer.padding, limits.max_kernel),
            ("dilation", layer.dilation, limits.max_dilation),
            ("groups", layer.groups, limits.max_channels),
        ]
    if isinstance(layer, m.MaxPool | m.AvgPool):
        return [
            ("kernel", layer.kernel, limits.max_kernel),
            ("stride", layer.stride, limits.max_stride),
            ("padding", layer.padding, limits.max_kernel),
        ]
    if isinstance(layer, m.AdaptiveAvgPool):
        return [("output_size", layer.output_size, limits.max_side)]
    if isinstance(layer, m.LRN):
        return [("size", layer.size, limits.max_channels)]
    if isinstance(layer, m.Linear):
        return [("out_features", layer.out_features, limits.max_features)]
    return []


def check_spec_limits(spec: m.Spec, limits: SpecLimits) -> None:
    """Field sizes: every value over its limit is listed, with the layer it belongs to."""
    issues = _bounded(len(spec.layers), limits.max_layers, None, None, "layers")
    issues += _bounded(spec.input.height, limits.max_side, None, None, "input.height")
    issues += _bounded(spec.input.width, limits.max_side, None, None, "input.width")
    issues += _bounded(spec.input.channels, limits.max_channels, None, None, "input.channels")
    named = zip(spec.layers[: limits.max_layers], m.layer_names(spec), strict=False)
    for index, (layer, name) in enumerate(named):
        for field, value, limit in _layer_fields(layer, limits):
            issues += _bounded(value, limit, index, name, field)
    if issues:
        raise SpecInvalid(issues)


def check_table_limits(table: Table, limits: SpecLimits) -> None:
    """Totals, derived analytically: parameters, activations per layer, MACs."""
    totals = table.totals
    issues = _bounded(totals.params, limits.max_params, None, None, "totals.params")
    issues += _bounded(totals.macs, limits.max_macs, None, None, "totals.macs")
    for row in table.layers:
        limit = limits.max_layer_activations
        issues += _bounded(row.activations, limit, row.index, row.name, "activations")
    if issues:
        raise SpecInvalid(issues)
