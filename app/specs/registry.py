"""The registry of built-in nets: every JSON file under data/, validated on load.

A file holding a ``variants`` list is a family (see family.py); any other file is one spec. The
registry refuses duplicate ids, so tests that parametrize over it cover every net, and a new spec
file gets every test for free.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.specs.family import Family, expand_family
from app.specs.models import Spec

DATA_DIR = Path(__file__).with_name("data")
TIMELINE_FILE = "ilsvrc.json"
ACROSS_FILE = "lecture-across.json"  # the lecture's figures about two nets at once
NOT_SPECS = frozenset({TIMELINE_FILE, ACROSS_FILE})


class SpecFileError(ValueError):
    """A spec file that does not load: names the file and what is wrong in it."""


class DuplicateSpecError(ValueError):
    pass


class UnknownSpecError(KeyError):
    def __init__(self, spec_id: str, known: list[str]) -> None:
        super().__init__(spec_id)
        self.spec_id = spec_id
        self.known = known

    def __str__(self) -> str:
        return f"unknown net {self.spec_id!r}; known: {', '.join(self.known)}"


class Registry:
    """Built-in specs by id, in the order they were registered."""

    def __init__(self, specs: list[Spec] | None = None) -> None:
        self._specs: dict[str, Spec] = {}
        for spec in specs or []:
            self.add(spec)

    def add(self, spec: Spec) -> None:
        if spec.id is None:
            raise SpecFileError(f"built-in spec {spec.name!r} has no id")
        if spec.id in self._specs:
            raise DuplicateSpecError(f"duplicate spec id {spec.id!r}")
        self._specs[spec.id] = spec

    def get(self, spec_id: str) -> Spec:
        try:
            return self._specs[spec_id]
        except KeyError:
            raise UnknownSpecError(spec_id, self.ids()) from None

    def ids(self) -> list[str]:
        return list(self._specs)

    def __iter__(self) -> Iterator[Spec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, spec_id: object) -> bool:
        return spec_id in self._specs


def _spec_dicts(path: Path) -> list[dict[str, Any]]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(raw, dict) and "variants" in raw:
        return expand_family(Family.model_validate(raw))
    return [raw]


def load_file(path: Path) -> list[Spec]:
    """Every spec one file declares; any problem is raised as SpecFileError naming the file."""
    try:
        return [Spec.model_validate(item) for item in _spec_dicts(path)]
    except (ValidationError, ValueError) as error:
        raise SpecFileError(f"{path.name}: {error}") from error


def _check_simplifies(registry: Registry) -> None:
    for spec in registry:
        if spec.simplifies is not None and spec.simplifies not in registry:
            raise SpecFileError(
                f"{spec.id} simplifies {spec.simplifies!r}, which is not a built-in net"
            )


def load_registry(data_dir: Path = DATA_DIR) -> Registry:
    registry = Registry()
    for path in sorted(data_dir.glob("*.json")):
        if path.name in NOT_SPECS:
            continue
        for spec in load_file(path):
            registry.add(spec)
    _check_simplifies(registry)
    return registry


@cache
def builtin_registry() -> Registry:
    """The built-in nets, loaded once per process."""
    return load_registry()
