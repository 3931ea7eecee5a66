"""Which weights a net's build uses: the policy behind `convatlas models build`'s flags.

A plain build keeps a pretrained build, else tries the published checkpoint and falls back to
seeded random weights when it cannot be downloaded; ``--weights`` insists on one checkpoint;
``--untrained`` asks for seeded random weights. The answer is the manifest's ``Weights``: the
state says why a net is untrained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from app.nets import weights as w
from app.nets.builder import DEFAULT_SEED
from app.repository.manifest import Weights
from app.specs import Spec

Say = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """The weights asked for.

    ``default`` (no flags): keep a pretrained build; otherwise the published checkpoint if there
    is one and it downloads, else seeded random weights. ``checkpoint`` (--weights): that file,
    and a failure is an error. ``untrained`` (--untrained): seeded random weights.
    """

    mode: Literal["default", "checkpoint", "untrained"]
    source: str | None  # the checkpoint's URL or path; for "default", the published URL if any
    note: str | None = None  # why untrained, when there is no source


@dataclass
class Downloads:
    """What this run learnt about the network: after one offline failure, no more tries."""

    cache_dir: Path
    timeout: float
    offline: str | None = None  # why the first try failed, without its URL
    fetched: dict[str, tuple[Path, str]] = field(default_factory=dict)


def plan_weights(spec: Spec, weights: str | None, untrained: bool) -> Plan:
    if untrained:
        return Plan("untrained", None, note="--untrained was given")
    if weights is not None:
        return Plan("checkpoint", weights)
    if spec.weights is not None:
        return Plan("default", spec.weights.url)
    return Plan("default", None, note="torchvision publishes no weights for this net")


def keeps(current: Weights, plan: Plan) -> bool:
    """Whether the current build already answers ``plan``, before any download or hashing."""
    if plan.mode == "untrained":
        return current.kind == "untrained" and current.seed == DEFAULT_SEED
    if plan.mode == "checkpoint":  # a hash-named URL names one immutable file
        same_url = plan.source == current.source and w.is_url(plan.source or "")
        return current.kind == "pretrained" and same_url
    # A plain build never replaces pretrained weights (published or --weights) with others,
    # and only tries a download where there is something to download.
    return current.kind == "pretrained" or plan.source is None


def resolve(
    plan: Plan, downloads: Downloads, say: Say, spec_id: str
) -> tuple[Weights, Path | None]:
    """The weights and checkpoint for ``plan``; published weights fall back to untrained."""
    if plan.source is None:
        state = "requested" if plan.mode == "untrained" else "unpublished"
        return Weights(state=state, seed=DEFAULT_SEED, note=plan.note), None
    try:
        path, sha256 = _checkpoint(plan.source, downloads)
    except w.DownloadFailed as error:
        if plan.mode == "checkpoint":
            raise
        reason = "offline" if error.offline else "download failed"
        note = f"{reason}: pretrained weights could not be downloaded: {error}"
        say(f"{spec_id}: {note}; falling back to untrained (seeded random weights)")
        return Weights(state="not_downloaded", seed=DEFAULT_SEED, note=note), None
    return Weights(state="pretrained", source=plan.source, sha256=sha256), path


def _checkpoint(source: str, downloads: Downloads) -> tuple[Path, str]:
    if not w.is_url(source):
        return w.local_checkpoint(Path(source))
    if source in downloads.fetched:
        return downloads.fetched[source]
    if downloads.offline is not None:
        # Each net's message and manifest note name its own URL, not the one that failed first.
        reason = f"not tried: offline ({downloads.offline})"
        raise w.DownloadFailed(source, reason, offline=True)
    try:
        found = w.fetch(source, downloads.cache_dir, downloads.timeout)
    except w.DownloadFailed as error:
        if error.offline:
            downloads.offline = error.reason
        raise
    downloads.fetched[source] = found
    return found
