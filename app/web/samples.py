"""The sample photographs a student can try instead of an upload, as static/samples/samples.json
lists them (sources and licences in static/samples/NOTES.md). A page sends a sample through the
same upload path as a chosen file: static/js/samples.js fetches it and hands it on."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter

SAMPLES_DIR = "samples"
MANIFEST = f"{SAMPLES_DIR}/samples.json"


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    label: str
    title: str
    author: str
    licence: str
    licence_url: str
    source_url: str

    @property
    def file(self) -> str:
        """The photograph, as a path under static/."""
        return f"{SAMPLES_DIR}/{self.id}.jpg"

    @property
    def thumb(self) -> str:
        return f"{SAMPLES_DIR}/thumbs/{self.id}.jpg"


def load_samples(static_dir: Path) -> list[Sample]:
    """The samples in the order the pages show them."""
    path = static_dir / MANIFEST
    return TypeAdapter(list[Sample]).validate_python(json.loads(path.read_text("utf-8")))
