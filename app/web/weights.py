"""What weights each net serves now, in words a page can show as they are.

A net is *pretrained* (its model was built from a checkpoint: the file's name and sha256), or
*untrained* because no ImageNet weights were ever published for it, or *untrained* because its
published weights are not in the build (offline, they could not be downloaded), or *untrained*
because it was built so (--untrained), or not built yet. The built model's manifest says which
(its weights' state, written by the build); ``manifest_weights`` is the one place that reads it, and
it re-reads a manifest only when the file changes (a stat per call), so pages can ask per request.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import urlparse

from app.core.table import Frozen
from app.repository.layout import MANIFEST_FILE
from app.repository.manifest import FiltersFile, ManifestError, read_manifest
from app.repository.manifest import WeightsState as ManifestState
from app.specs import Spec

WeightsState = Literal["pretrained", "unpublished", "not_downloaded", "requested", "not_built"]
MANIFEST_CACHE_SIZE = 64


class ManifestWeights(Frozen):
    """The weights a built model holds, as its manifest records them."""

    state: ManifestState
    source: str | None
    sha256: str | None
    filters: FiltersFile | None  # conv1 drawn (pretrained builds only)


class ServedWeights(Frozen):
    """A net's weights as served now."""

    state: WeightsState
    pretrained: bool
    untrained: bool  # its predictions are noise: random weights now, or once built
    label: str  # a few words for a table cell
    detail: str  # plain sentences: what is loaded, what it means, how to change it
    checkpoint: str | None  # the loaded checkpoint's file name, or the published one missing
    sha256: str | None  # of the loaded checkpoint
    fix: str | None  # the command that changes it, where one does
    filters: FiltersFile | None = None  # conv1's filters, drawn from the loaded checkpoint


@lru_cache(maxsize=MANIFEST_CACHE_SIZE)
def _read(model_dir: Path, stamp: tuple[int, int, int]) -> ManifestWeights | None:
    del stamp  # part of the cache key only: a rewritten manifest is read again
    try:
        manifest = read_manifest(model_dir)
    except ManifestError:
        return None
    weights = manifest.weights
    return ManifestWeights(
        state=weights.state, source=weights.source, sha256=weights.sha256, filters=manifest.filters
    )


def manifest_weights(model_dir: Path) -> ManifestWeights | None:
    """The weights of the model built in ``model_dir``; None when none is (completely) built."""
    try:
        stat = (model_dir / MANIFEST_FILE).stat()
    except OSError:
        return None
    return _read(model_dir, (stat.st_mtime_ns, stat.st_size, stat.st_ino))


def file_name(source: str) -> str:
    """A checkpoint's file name, from its URL or its path."""
    return PurePosixPath(urlparse(source).path or source).name or source


def _build(spec_id: str) -> str:
    return f"convatlas models build {spec_id}"


def _not_built(spec: Spec, spec_id: str) -> ServedWeights:
    published = file_name(spec.weights.url) if spec.weights else None
    then = (
        f"it loads the published weights ({published}) if they can be downloaded, else seeded "
        "random ones"
        if published
        else "it runs on seeded random weights: no ImageNet weights were ever published for it"
    )
    return ServedWeights(
        state="not_built",
        pretrained=False,
        untrained=published is None,
        label="not built yet",
        detail=f"Not built yet. Once built, {then}.",
        checkpoint=published,
        sha256=None,
        fix=_build(spec_id),
    )


def _requested(published: str, spec_id: str) -> ServedWeights:
    return ServedWeights(
        state="requested",
        pretrained=False,
        untrained=True,
        label="untrained: on request",
        detail="It was built with --untrained, so it runs on seeded random weights. To load "
        f"the published weights ({published}), run `{_build(spec_id)}`.",
        checkpoint=published,
        sha256=None,
        fix=_build(spec_id),
    )


def served_weights(models_dir: Path, spec: Spec) -> ServedWeights:
    """What ``spec``'s built model holds now, under ``models_dir``."""
    spec_id = spec.id or spec.name
    built = manifest_weights(models_dir / spec_id)
    if built is None:
        return _not_built(spec, spec_id)
    if built.state == "pretrained" and built.source is not None:
        name = file_name(built.source)
        return ServedWeights(
            state="pretrained",
            pretrained=True,
            untrained=False,
            label="pretrained",
            detail=f"It runs the checkpoint {name} (sha256 {built.sha256}).",
            checkpoint=name,
            sha256=built.sha256,
            fix=None,
            filters=built.filters,
        )
    # A net that never had published weights is untrained because of that, however it was
    # built: "--untrained" changed nothing for it and is not worth a student's attention.
    if built.state == "unpublished" or spec.weights is None:
        return ServedWeights(
            state="unpublished",
            pretrained=False,
            untrained=True,
            label="untrained: none published",
            detail="No ImageNet weights were ever published for this net, so it runs on seeded "
            "random weights.",
            checkpoint=None,
            sha256=None,
            fix=None,
        )
    if built.state == "requested":
        return _requested(file_name(spec.weights.url), spec_id)
    name, host = file_name(spec.weights.url), urlparse(spec.weights.url).netloc
    return ServedWeights(
        state="not_downloaded",
        pretrained=False,
        untrained=True,
        label="untrained: not downloaded",
        detail=f"The published weights ({name}) could not be downloaded when this model was "
        f"built, so it runs on seeded random weights. To load them, run "
        f"`{_build(spec_id)}` on a machine that can reach {host}, or "
        f"`{_build(spec_id)} --weights {name}` with the file copied here.",
        checkpoint=name,
        sha256=None,
        fix=_build(spec_id),
    )
