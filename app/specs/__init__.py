"""The nets as data: spec models, family expansion and the registry of built-in nets."""

from app.specs.models import Layer, LectureFigure, Spec, Volume
from app.specs.registry import Registry, UnknownSpecError, builtin_registry

__all__ = [
    "Layer",
    "LectureFigure",
    "Registry",
    "Spec",
    "UnknownSpecError",
    "Volume",
    "builtin_registry",
]
