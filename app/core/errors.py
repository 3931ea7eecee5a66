"""Spec errors naming the layer (index and name), the field and the numbers; never a traceback."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from app.specs.models import LAYER_KINDS


class SpecIssue(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int | None
    name: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = "spec" if self.index is None else f"layer {self.index}"
        if self.name:
            where += f" ({self.name})"
        if self.field:
            where += f", field {self.field!r}"
        return f"{where}: {self.message}"


class SpecInvalid(ValueError):
    """Every problem found in one spec."""

    def __init__(self, issues: Sequence[SpecIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class LayerError(ValueError):
    """Raised by a layer rule: the offending field and a message with the numbers in it."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _raw_layer_name(raw: object, index: int) -> str | None:
    if not isinstance(raw, Mapping):
        return None
    layers = raw.get("layers")
    if isinstance(layers, list) and 0 <= index < len(layers) and isinstance(layers[index], dict):
        name = layers[index].get("name")
        return name[:64] if isinstance(name, str) else None
    return None


def _describe(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "union_tag_invalid":
        return f"unknown kind; expected one of: {', '.join(LAYER_KINDS)}"
    if kind == "union_tag_not_found":
        return f"missing 'kind'; expected one of: {', '.join(LAYER_KINDS)}"
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return "must be a whole number (not a string, a float or a boolean)"
    if kind == "finite_number":
        return "must be a finite number (NaN and Infinity are not allowed)"
    return str(error["msg"]).removeprefix("Value error, ")


def issues_from_validation(error: ValidationError, raw: object) -> list[SpecIssue]:
    """Map pydantic's errors onto layer index, layer name and field."""
    issues = []
    for item in error.errors(include_url=False, include_input=False):
        loc = list(item["loc"])
        index = name = field = None
        if len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int):
            index = loc[1]
            name = _raw_layer_name(raw, index)
            rest = [str(part) for part in loc[3:]]  # loc[2] is the kind tag
            field = ".".join(rest) if rest else ("kind" if "union_tag" in item["type"] else None)
        elif loc:
            field = ".".join(str(part) for part in loc)
        issues.append(SpecIssue(index=index, name=name, field=field, message=_describe(item)))
    return issues


def _refuse_constant(token: str) -> None:
    raise ValueError(f"{token} is not valid JSON")


def _finite_float(token: str) -> float:
    value = float(token)
    if math.isinf(value):
        raise ValueError(f"number {token[:20]!r}... is out of range")
    return value


def parse_json(text: str | bytes) -> Any:
    """Strict JSON: NaN, Infinity, numbers that overflow, absurd nesting and strings that are not
    Unicode (a lone UTF-16 surrogate escape, such as "\\ud800") are all ValueError."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
        _refuse_lone_surrogates(value)
    except RecursionError:
        raise ValueError("JSON is nested too deeply") from None
    return value


def _refuse_lone_surrogates(value: Any) -> None:
    """JSON's \\u escapes can spell half a surrogate pair, which no UTF-8 answer can carry: a
    name holding one would pass every check, then fail as the answer is encoded."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)") from None
