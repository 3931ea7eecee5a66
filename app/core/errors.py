"""Spec errors naming the layer (index and name), the field and the numbers; never a traceback."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from app.specs.fields import field_names
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


# A value the user typed is repeated in a message only when it is short plain text: digits,
# letters and a few signs (never markup, quotes or control characters).
PLAIN_VALUE = re.compile(r"[\w .,+\-]{1,24}", re.ASCII)


def _shown(value: object) -> str:
    """What the user gave, in words: -5, 2.5, true, the text "64", a list, an object."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, str):
        if value == "":
            return "empty text"
        return f'the text "{value}"' if PLAIN_VALUE.fullmatch(value) else "text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _bound(value: object) -> str:
    if isinstance(value, float):
        return format(value, "g")  # 1, not 1.0
    return f"{value:,}" if isinstance(value, int) else str(value)


def _whole_number(given: object) -> str:
    message = f"must be a whole number, not {_shown(given)}"
    if isinstance(given, float) and given.is_integer():
        return f"{message} (write {int(given)}, without a decimal point)"
    if isinstance(given, str) and re.fullmatch(r"-?\d{1,18}", given.strip()):
        return f"{message} (write {given.strip()}, without quotes)"
    return message


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


# pydantic's type errors: what the field must be, by error type.
MUST_BE = {
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list",
}
WHOLE_NUMBER = frozenset({"int_type", "int_parsing", "int_from_float"})
OBJECT = frozenset({"model_attributes_type", "model_type", "dict_type"})


def _describe(error: Mapping[str, Any], kind: str | None = None, field: str | None = None) -> str:
    """pydantic's error in plain words, with the numbers: what the field must be, what it got.
    ``kind`` is the layer's kind where the error is in a layer ("layer" when it has none)."""
    code, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    if code.startswith("union_tag"):
        return _kind_message(ctx.get("tag") if code == "union_tag_invalid" else None)
    if code in OBJECT:
        example = ' such as {"kind": "relu"}' if kind == "layer" else ""
        return f"must be an object{example}, not {_shown(given)}"
    if code == "missing":
        return "required field is missing"
    if code == "extra_forbidden":
        return _unknown_field(kind)
    if code in WHOLE_NUMBER:
        return _whole_number(given)
    if code in MUST_BE:
        return f"must be {MUST_BE[code]}, not {_shown(given)}"
    if code == "finite_number":
        return "must be a finite number (NaN and Infinity are not allowed)"
    noun = "layer" if field == "layers" else "item"
    return _bounds(code, ctx, given, noun) or str(error["msg"]).removeprefix("Value error, ")


def _kind_message(tag: object) -> str:
    expected = f"expected one of: {', '.join(LAYER_KINDS)}"
    if tag is None:
        return f"missing 'kind'; {expected}"
    shown = _shown(tag)
    named = f' "{tag}"' if shown.startswith("the text") else ""
    return f"unknown kind{named}; {expected}"


def _unknown_field(kind: str | None) -> str:
    if kind is None or kind == "layer":
        return "unknown field"
    fields = field_names(kind)
    known = f"its fields are: {', '.join(fields)}" if fields else "it takes only a name"
    return f"unknown field: a {kind} layer has no such field; {known}"


def _bounds(code: str, ctx: Mapping[str, Any], given: object, noun: str) -> str | None:
    """Bounds broken: the bound and the value given, both as numbers."""
    if code == "greater_than_equal":
        return f"must be at least {_bound(ctx['ge'])}, but is {_shown(given)}"
    if code == "greater_than":
        return f"must be more than {_bound(ctx['gt'])}, but is {_shown(given)}"
    if code == "less_than_equal":
        return f"must be at most {_bound(ctx['le'])}, but is {_shown(given)}"
    if code == "less_than":
        return f"must be less than {_bound(ctx['lt'])}, but is {_shown(given)}"
    if code == "string_too_short":
        least = ctx["min_length"]
        return (
            "must not be empty"
            if least == 1
            else f"must have at least {_count(least, 'character')}"
        )
    if code == "string_too_long":
        length = len(given) if isinstance(given, str) else 0
        return f"must have at most {_count(ctx['max_length'], 'character')}, but has {length:,}"
    if code == "too_short":
        has = ctx.get("actual_length", 0)
        return f"needs at least {_count(ctx['min_length'], noun)}, but has {has:,}"
    if code == "too_long":
        has = ctx.get("actual_length", 0)
        return f"may have at most {_count(ctx['max_length'], noun)}, but has {has:,}"
    return None


def issues_from_validation(error: ValidationError, raw: object) -> list[SpecIssue]:
    """Map pydantic's errors onto layer index, layer name and field."""
    issues = []
    for item in error.errors(include_url=False, include_input=True):
        loc = list(item["loc"])
        index = name = field = kind = None
        if len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int):
            index = loc[1]
            name = _raw_layer_name(raw, index)
            rest = [str(part) for part in loc[3:]]  # loc[2] is the kind tag
            field = ".".join(rest) if rest else ("kind" if "union_tag" in item["type"] else None)
            kind = str(loc[2]) if len(loc) >= 3 else "layer"
        elif loc:
            field = ".".join(str(part) for part in loc)
        message = _describe(item, kind, field)
        issues.append(SpecIssue(index=index, name=name, field=field, message=message))
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
