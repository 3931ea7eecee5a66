"""Limits on a user's spec, checked before anything is built.

The calculator's arithmetic is cheap at any size (Python integers), but a spec that is accepted
can be exported and run, so the server bounds it: sizes per field first, then the totals the
calculator derives (parameters, activations per layer, MACs), all without allocating anything.
"""

from __future__ import annotations

from collections.abc import Iterator

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
    # What a spec carries besides its layers' settings: lecture figures, notes, metadata. Every
    # number a figure states (its value, each factor and their product, its reference) stays
    # within max_figure_value, so no figure's arithmetic or text can grow without bound.
    max_figures: int = Field(default=64, ge=0)
    max_figure_value: int = Field(default=10**15, ge=1)
    max_factors: int = Field(default=16, ge=1)
    max_decimals: int = Field(default=12, ge=0)
    max_text: int = Field(default=2_000, ge=1)
    max_list: int = Field(default=64, ge=1)
    # The table a spec answers with, as JSON: a larger one is refused, never built into a page.
    max_answer_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)


def _number(value: int | float) -> str:
    """A number as a message shows it: 1,000,000; a huge one by its digits (10^400 in full would
    be a 500-character message)."""
    if isinstance(value, float):
        return format(value, "g")
    if abs(value) >= 10**40:
        return f"{'-' if value < 0 else ''}a number of 41 digits or more"
    return f"{value:,}"


def _bounded(
    value: int | float | None, limit: int, index: int | None, name: str | None, field: str
) -> list[SpecIssue]:
    if value is None or abs(value) <= limit:
        return []
    message = f"{_number(value)} is over the limit of {limit:,}"
    return [SpecIssue(index=index, name=name, field=field, message=message)]


def _leaves(value: object, path: str) -> Iterator[tuple[str, object]]:
    """Every value in a validated model (lists too, then their items), with its dotted path."""
    if isinstance(value, BaseModel):
        for key in type(value).model_fields:
            yield from _leaves(getattr(value, key), f"{path}.{key}" if path else key)
        return
    yield path, value
    if isinstance(value, list):
        for position, item in enumerate(value):
            yield from _leaves(item, f"{path}.{position}")


def _list_limit(field: str, limits: SpecLimits) -> int:
    last = field.rsplit(".", 1)[-1]
    if last == "lecture":
        return limits.max_figures
    return limits.max_factors if last == "factors" else limits.max_list


def _leaf_issues(
    field: str, value: object, limits: SpecLimits, index: int | None, name: str | None
) -> list[SpecIssue]:
    """Text length, list length, number size; decimals by their own limit."""
    if isinstance(value, str) and len(value) > limits.max_text:
        message = f"has {len(value):,} characters, over the limit of {limits.max_text:,}"
        return [SpecIssue(index=index, name=name, field=field, message=message)]
    if isinstance(value, list) and len(value) > _list_limit(field, limits):
        limit = _list_limit(field, limits)
        message = f"has {len(value):,} items, over the limit of {limit:,}"
        return [SpecIssue(index=index, name=name, field=field, message=message)]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []
    if field.endswith(".decimals"):
        return _bounded(value, limits.max_decimals, index, name, field)
    return _bounded(value, limits.max_figure_value, index, name, field)


def _product_issues(
    field: str, value: object, limit: int, index: int | None, name: str | None
) -> list[SpecIssue]:
    """The factors' product, multiplied no further than the limit (each factor is bounded, but
    sixteen of them are not)."""
    if not field.endswith(".factors") or not isinstance(value, list):
        return []
    product = 1
    for factor in value:
        product *= factor
        if product > limit:
            message = f"their product is over the limit of {limit:,}"
            return [SpecIssue(index=index, name=name, field=field, message=message)]
    return []


def _carried_issues(
    model: BaseModel, keys: tuple[str, ...], limits: SpecLimits, index: int | None, name: str | None
) -> list[SpecIssue]:
    """The limits on what a spec or a layer carries besides its settings."""
    issues: list[SpecIssue] = []
    for key in keys:
        for field, value in _leaves(getattr(model, key), key):
            found = _leaf_issues(field, value, limits, index, name)
            found = found or _product_issues(field, value, limits.max_figure_value, index, name)
            issues += found
    return issues


# A spec's own fields besides its input and layers, which have limits of their own.
SPEC_CARRIED = tuple(key for key in m.Spec.model_fields if key not in {"input", "layers"})
LAYER_CARRIED = ("notes", "lecture")


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
    issues += _carried_issues(spec, SPEC_CARRIED, limits, None, None)
    for index, (layer, name) in enumerate(named):
        for field, value, limit in _layer_fields(layer, limits):
            issues += _bounded(value, limit, index, name, field)
        issues += _carried_issues(layer, LAYER_CARRIED, limits, index, name)
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
    check_answer_size(table, limits)


def check_answer_size(table: Table, limits: SpecLimits) -> None:
    """The table as JSON, the largest form it is served in, stays within max_answer_bytes."""
    size = len(table.model_dump_json())
    if size > limits.max_answer_bytes:
        limit = limits.max_answer_bytes
        message = f"the table would be {size:,} bytes, over the limit of {limit:,}"
        raise SpecInvalid([SpecIssue(index=None, name=None, field=None, message=message)])
