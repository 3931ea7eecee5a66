"""Each layer kind's fields a user sets, read off the models in models.py (never listed twice).

The custom editor builds its form from this (one input per field, with its type, bounds and
default), and the spec errors name a kind's fields from it. A new kind or field added to
models.py shows up here, in the form and in the messages, with nothing else to change.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

from app.specs.models import LAYER_KINDS, Layer, LayerBase

# Set by every layer the same way, or built-in metadata a user's spec does not carry.
COMMON_FIELDS = frozenset({"kind", "name", "notes", "lecture"})
FieldType = Literal["int", "float", "bool"]
JSON_TYPES: dict[str, FieldType] = {"integer": "int", "number": "float", "boolean": "bool"}


class LayerField(BaseModel):
    """One field of a layer kind, as a form shows it."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: FieldType
    required: bool
    default: int | float | bool | None = None
    # None as the default stands for a value derived from another field (a pool's stride is
    # its kernel): the form says so instead of showing a number.
    default_from: str | None = None
    minimum: int | float | None = None
    exclusive_minimum: int | float | None = None
    maximum: int | float | None = None


class LayerKindFields(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str
    fields: list[LayerField]


def _layer_models() -> dict[str, type[LayerBase]]:
    union = get_args(Layer)[0]
    models: dict[str, type[LayerBase]] = {}
    for model in get_args(union):
        kind = get_args(model.model_fields["kind"].annotation)[0]
        models[kind] = model
    return models


def _field(name: str, schema: dict[str, Any], required: bool) -> LayerField:
    options = schema.get("anyOf", [schema])
    typed = next(option for option in options if option.get("type") in JSON_TYPES)
    default = schema.get("default")
    nullable = any(option.get("type") == "null" for option in options)
    return LayerField(
        name=name,
        type=JSON_TYPES[typed["type"]],
        required=required,
        default=default,
        default_from="kernel" if nullable and default is None and name == "stride" else None,
        minimum=typed.get("minimum"),
        exclusive_minimum=typed.get("exclusiveMinimum"),
        maximum=typed.get("maximum"),
    )


def _kind_fields(model: type[LayerBase]) -> list[LayerField]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        _field(name, prop, name in required)
        for name, prop in schema["properties"].items()
        if name not in COMMON_FIELDS
    ]


@cache
def layer_kind_fields() -> tuple[LayerKindFields, ...]:
    """Every kind, in the order of LAYER_KINDS, with the fields a user sets."""
    models = _layer_models()
    return tuple(
        LayerKindFields(kind=kind, fields=_kind_fields(models[kind])) for kind in LAYER_KINDS
    )


def field_names(kind: str) -> list[str]:
    """The fields a layer of ``kind`` takes besides kind and name ([] for an unknown kind)."""
    for entry in layer_kind_fields():
        if entry.kind == kind:
            return [field.name for field in entry.fields]
    return []
