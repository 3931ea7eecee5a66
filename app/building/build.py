"""`convatlas models build`: each net built into a staging folder and published complete.

For each net: plan its weights (app/nets/plan.py), build the torch net, export the classifier
and the features model, check ONNX Runtime against torch (app/inference/verify.py, in this
process), draw conv1's filters when the weights are pretrained (app/nets/filters.py), write
config.pbtxt and the manifest, then rename the folder into place
(app/repository/files.py). A net whose manifest already matches its spec and weights is skipped.
The whole run holds the repository's build lock; it first sweeps what killed builds left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.inference import verify
from app.nets import weights as w
from app.nets.builder import build
from app.nets.describe import classes, manifest_for, model_file, spec_fingerprint
from app.nets.export import ExportError, export_pair
from app.nets.filters import write_filters
from app.nets.plan import Downloads, Plan, keeps, plan_weights, resolve
from app.nets.progress import BuildProgress, SayProgress
from app.nets.triton import config_text
from app.repository.files import publish, staging, sweep, write_atomic
from app.repository.layout import CONFIG_FILE, FEATURES_FILE, MODEL_FILE, VERSION, net_dir
from app.repository.lock import build_lock
from app.repository.manifest import (
    FORMAT,
    Manifest,
    ManifestError,
    Weights,
    read_manifest,
    write_manifest,
)
from app.settings import Settings, get_settings
from app.specs import Spec, builtin_registry

PARITY_TOLERANCE = 1e-4

Say = Callable[[str], None]


@dataclass(frozen=True)
class Outcome:
    id: str
    status: str  # "built", "up to date" or "failed"
    message: str
    weights: Weights | None = None
    seconds: float = 0.0


def build_models(
    ids: Sequence[str],
    *,
    weights: str | None = None,
    untrained: bool = False,
    root: Path,
    settings: Settings | None = None,
    say: Say = print,
    progress: BuildProgress | None = None,
) -> list[Outcome]:
    """Build each net into ``root``, holding the repository's build lock while doing so.
    ``say`` hears notes (waiting for the lock, no weights offline); ``progress`` each net's
    start, steps and end (by default, its outcome as one line through ``say``)."""
    settings = settings or get_settings()
    progress = progress or SayProgress(say)
    downloads = Downloads(
        settings.weights_dir or w.default_cache_dir(), settings.download_timeout_s
    )
    root.mkdir(parents=True, exist_ok=True)
    outcomes = []
    with build_lock(root, say):
        sweep(root)
        for spec_id in ids:
            spec = builtin_registry().get(spec_id)
            plan = plan_weights(spec, weights, untrained)
            progress.started(spec_id)
            outcome = build_one(spec, root, plan, downloads, say, progress)
            progress.finished(spec_id, outcome.status, outcome.message)
            outcomes.append(outcome)
    return outcomes


def build_one(
    spec: Spec,
    root: Path,
    plan: Plan,
    downloads: Downloads,
    say: Say,
    progress: BuildProgress,
) -> Outcome:
    spec_id = spec.id or spec.name
    started = time.perf_counter()
    current = read_current(net_dir(root, spec_id), spec)
    if current is not None and keeps(current.weights, plan):
        return _up_to_date(current)
    try:
        progress.step(spec_id, "weights")
        weights, checkpoint = resolve(plan, downloads, say, spec_id)
        if current is not None and current.weights.same_weights(weights):
            return _up_to_date(current)
        manifest = write_net(spec, root, weights, checkpoint, progress)
    except (w.WeightsError, ExportError, verify.ParityFailed, OSError) as error:
        return Outcome(spec_id, "failed", str(error))
    seconds = time.perf_counter() - started
    message = (
        f"{seconds:.1f} s -> {net_dir(root, spec_id)}; {weights.describe()}; "
        f"ORT vs torch max |diff| {manifest.parity.max_abs_diff:.1e}"
    )
    return Outcome(spec_id, "built", message, weights, seconds)


def _up_to_date(current: Manifest) -> Outcome:
    return Outcome(current.id, "up to date", current.weights.describe(), current.weights)


def write_net(
    spec: Spec,
    root: Path,
    weights: Weights,
    checkpoint: Path | None,
    progress: BuildProgress,
) -> Manifest:
    """Build, export and check the net in a staging folder, then publish it as its folder."""
    spec_id = spec.id or spec.name
    net = build(spec, seed=None if checkpoint else weights.seed)
    if checkpoint is not None:
        w.load_into(net, checkpoint)
    with staging(root, spec_id) as folder:
        # The classifier gets its version folder last: until then the staging folder holds
        # no version a repository scanner (Triton's) could take for a model to load.
        exported, features_path = folder / f".{Path(MODEL_FILE).name}", folder / FEATURES_FILE
        progress.step(spec_id, "export")
        layers, reference = export_pair(net, spec, exported, features_path)
        progress.step(spec_id, "parity check")
        parity = verify.parity(
            exported,
            features_path,
            reference.inputs,
            reference.logits,
            reference.features,
            PARITY_TOLERANCE,
        )
        files = (model_file(exported, MODEL_FILE), model_file(features_path, FEATURES_FILE))
        # Trained filters are edges and colours a student can see; random ones are noise.
        filters = write_filters(net, spec, folder) if weights.kind == "pretrained" else None
        write_atomic(folder / CONFIG_FILE, config_text(spec, classes(spec)).encode())
        (folder / VERSION).mkdir()
        exported.rename(folder / MODEL_FILE)
        ort = verify.onnxruntime_version()
        manifest = manifest_for(spec, weights, files, layers, parity, ort, filters)
        write_manifest(folder, manifest)
        publish(folder, net_dir(root, spec_id))
    return manifest


def read_current(model_dir: Path, spec: Spec) -> Manifest | None:
    """The existing manifest, if it describes a finished build of this very spec whose files
    are intact: size first (cheap), then sha256, so a damaged file is rebuilt, not kept."""
    try:
        manifest = read_manifest(model_dir)
    except ManifestError:
        return None
    fresh = manifest.format == FORMAT and manifest.spec_sha256 == spec_fingerprint(spec)
    # A pretrained build from before conv1's filters were drawn is redone to draw them.
    drawn = manifest.weights.kind != "pretrained" or manifest.filters is not None
    files = manifest.files()
    try:
        intact = all(w.sha256_of(model_dir / f.path) == f.sha256 for f in files)
    except OSError:
        return None
    return manifest if fresh and drawn and intact and (model_dir / CONFIG_FILE).is_file() else None
