"""models/: the model repository `convatlas models build` writes, laid out for NVIDIA Triton.

    models/<id>/config.pbtxt     Triton's configuration: onnxruntime_onnx, dynamic batch
    models/<id>/1/model.onnx     the classifier: input [N, 3, H, W] float32 -> logits [N, 1000]
    models/<id>/features.onnx    every conv and pool layer's output, for the feature-map strip
    models/<id>/manifest.json    input, preprocessing, labels, weights provenance, versions

Triton serves the folder unchanged (it reads config.pbtxt and the numbered version folders and
ignores the other files). Every file is written under a temporary name and renamed into place;
the manifest goes last, so a manifest whose files have the sizes and hashes it records is a
finished build. The temporary files of a killed build are removed by the next build, of any net,
once it holds the repository's build lock.
A net whose manifest already matches its spec and weights is skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import torch

import app
from app.nets import weights as w
from app.nets.builder import DEFAULT_SEED, SpecNet, build
from app.nets.export import (
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    ExportError,
    FeatureLayer,
    export,
    features_net,
)
from app.nets.progress import BuildProgress, SayProgress
from app.settings import Settings, get_settings
from app.specs import Spec, builtin_registry
from app.specs.models import Linear

MANIFEST = "manifest.json"
CONFIG = "config.pbtxt"
VERSION = "1"
MODEL_FILE = f"{VERSION}/model.onnx"
FEATURES_FILE = "features.onnx"
LOCK_FILE = ".build.lock"
PARTIAL = ".partial"
PARITY_FILE = "parity.npz"
# _partial() names a temporary file "." + its final name + "." + tempfile's random characters +
# PARTIAL. Only files named so, after a file a build writes, are ever swept: the rest is not ours.
_WRITTEN = (Path(MODEL_FILE).name, FEATURES_FILE, PARITY_FILE, CONFIG, MANIFEST)
_WRITTEN_NAMES = "|".join(re.escape(name) for name in _WRITTEN)
OUR_PARTIAL = re.compile(rf"\.(?:{_WRITTEN_NAMES})\.[^.]+{re.escape(PARTIAL)}")

# Bump when the export changes what ends up in the files, so existing builds are redone.
EXPORT_FORMAT = 1
MANIFEST_FORMAT = 1

# torchvision's ImageNet transform (the same for AlexNet and every VGG); see tests/golden.
RESIZE = 256
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LABEL_SET, LABEL_COUNT = "imagenet-1k", 1000

PARITY_BATCH = 2
PARITY_SEED = 1234
PARITY_TOLERANCE = 1e-4
TRITON_MAX_BATCH = 64

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


@dataclass(frozen=True)
class Outcome:
    id: str
    status: str  # "built", "up to date" or "failed"
    message: str
    provenance: w.Provenance | None = None
    seconds: float = 0.0


@dataclass
class Downloads:
    """What this run learnt about the network: after one offline failure, no more tries."""

    cache_dir: Path
    timeout: float
    offline: str | None = None  # why the first try failed, without its URL
    fetched: dict[str, tuple[Path, str]] = field(default_factory=dict)


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
        _remove_stale_partials(root)
        for spec_id in ids:
            spec = builtin_registry().get(spec_id)
            plan = plan_weights(spec, weights, untrained)
            progress.started(spec_id)
            outcome = build_one(spec, root, plan, downloads, say, progress)
            progress.finished(spec_id, outcome.status, outcome.message)
            outcomes.append(outcome)
    return outcomes


def summary(outcomes: Sequence[Outcome]) -> str:
    counts = {s: sum(o.status == s for o in outcomes) for s in ("built", "up to date", "failed")}
    line = ", ".join(f"{n} {status}" for status, n in counts.items())
    untrained = [o.id for o in outcomes if o.provenance and o.provenance.kind == "untrained"]
    if untrained:
        line += f"; untrained (seeded random weights): {', '.join(untrained)}"
    return line


def plan_weights(spec: Spec, weights: str | None, untrained: bool) -> Plan:
    if untrained:
        return Plan("untrained", None, note="--untrained was given")
    if weights is not None:
        return Plan("checkpoint", weights)
    if spec.weights is not None:
        return Plan("default", spec.weights.url)
    return Plan("default", None, note="torchvision publishes no weights for this net")


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
    model_dir = root / spec_id
    current = read_current(model_dir, spec)
    if current is not None and keeps(current, plan):
        return Outcome(spec_id, "up to date", _describe(current), _provenance(current))
    try:
        progress.step(spec_id, "weights")
        provenance, checkpoint = resolve(plan, downloads, say, spec_id)
        if current is not None and _provenance(current) == _without_note(provenance):
            return Outcome(spec_id, "up to date", _describe(current), _provenance(current))
        parity = write_model(spec, model_dir, provenance, checkpoint, progress)
    except (w.WeightsError, ExportError, OSError) as error:
        return Outcome(spec_id, "failed", str(error))
    seconds = time.perf_counter() - started
    message = (
        f"{seconds:.1f} s -> {model_dir}; {provenance.describe()}; "
        f"ORT vs torch max |diff| {parity['max_abs_diff']:.1e}"
    )
    return Outcome(spec_id, "built", message, provenance, seconds)


def keeps(current: dict[str, Any], plan: Plan) -> bool:
    """Whether the current build already answers ``plan``, before any download or hashing."""
    provenance = _provenance(current)
    if plan.mode == "untrained":
        return provenance.kind == "untrained" and provenance.seed == DEFAULT_SEED
    if plan.mode == "checkpoint":  # a hash-named URL names one immutable file
        same_url = plan.source == provenance.source and w.is_url(plan.source or "")
        return provenance.kind == "pretrained" and same_url
    # A plain build never replaces pretrained weights (published or --weights) with others,
    # and only tries a download where there is something to download.
    return provenance.kind == "pretrained" or plan.source is None


def resolve(
    plan: Plan, downloads: Downloads, say: Say, spec_id: str
) -> tuple[w.Provenance, Path | None]:
    """The provenance and checkpoint for ``plan``; published weights fall back to untrained."""
    if plan.source is None:
        return w.Provenance("untrained", seed=DEFAULT_SEED, note=plan.note), None
    try:
        path, sha256 = _checkpoint(plan.source, downloads)
    except w.DownloadFailed as error:
        if plan.mode == "checkpoint":
            raise
        reason = "offline" if error.offline else "download failed"
        note = f"{reason}: pretrained weights could not be downloaded: {error}"
        say(f"{spec_id}: {note}; falling back to untrained (seeded random weights)")
        return w.Provenance("untrained", seed=DEFAULT_SEED, note=note), None
    return w.Provenance("pretrained", source=plan.source, sha256=sha256), path


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


def write_model(
    spec: Spec,
    model_dir: Path,
    provenance: w.Provenance,
    checkpoint: Path | None,
    progress: BuildProgress,
) -> dict[str, Any]:
    """Export, check and verify into temporary files, then rename them into place."""
    spec_id = spec.id or spec.name
    net = build(spec, seed=None if checkpoint else provenance.seed)
    if checkpoint is not None:
        w.load_into(net, checkpoint)
    (model_dir / VERSION).mkdir(parents=True, exist_ok=True)
    with (
        _partial(model_dir, Path(MODEL_FILE).name) as model_tmp,
        _partial(model_dir, FEATURES_FILE) as features_tmp,
        _partial(model_dir, PARITY_FILE) as data_tmp,
    ):
        progress.step(spec_id, "export")
        layers = _export_both(net, spec, model_tmp, features_tmp, data_tmp)
        progress.step(spec_id, "parity check")
        parity = verify(model_tmp, features_tmp, data_tmp)
        files = {"model": _file_entry(model_tmp, MODEL_FILE)}
        files["features"] = _file_entry(features_tmp, FEATURES_FILE)
        (model_dir / MANIFEST).unlink(missing_ok=True)  # from here on the net reads as unbuilt
        os.replace(model_tmp, model_dir / MODEL_FILE)
        os.replace(features_tmp, model_dir / FEATURES_FILE)
    _write_text(model_dir / CONFIG, triton_config(spec))
    manifest = build_manifest(spec, provenance, files, layers, parity)
    _write_text(model_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return parity


def _export_both(
    net: SpecNet, spec: Spec, model_path: Path, features_path: Path, data_path: Path
) -> list[FeatureLayer]:
    inputs = _random_inputs(spec)
    features, layers = features_net(net, spec)
    export(net, inputs, model_path, [OUTPUT_NAME])
    export(features, inputs[:1], features_path, [layer.name for layer in layers])
    with torch.no_grad():
        arrays = {"input": inputs.numpy(), "logits": net(inputs).numpy()}
        arrays["features_input"] = inputs[:1].numpy()
        for layer, output in zip(layers, features(inputs[:1]), strict=True):
            arrays[f"feature:{layer.name}"] = output.numpy()
    with data_path.open("wb") as file:
        np.savez(file, **arrays)
    return layers


def _random_inputs(spec: Spec) -> torch.Tensor:
    generator = torch.Generator().manual_seed(PARITY_SEED)
    shape = (PARITY_BATCH, spec.input.channels, spec.input.height, spec.input.width)
    return torch.randn(shape, generator=generator)


def verify(model: Path, features: Path, data: Path) -> dict[str, Any]:
    """ONNX Runtime's outputs against torch's, by app.inference.verify in a subprocess.

    A subprocess because ONNX Runtime belongs to the inference layer, which this layer must not
    import; it also proves the files load in a fresh process, as the server will load them.
    """
    command = [sys.executable, "-m", "app.inference.verify", str(model), str(features), str(data)]
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExportError(f"ONNX Runtime could not run the exported model: {detail}")
    parity: dict[str, Any] = json.loads(result.stdout)
    for key in ("scaled_diff", "features_scaled_diff"):
        if not parity[key] <= PARITY_TOLERANCE:
            raise ExportError(f"ONNX Runtime differs from torch: {key} {parity[key]:.2e}")
    return parity


def _pythonpath() -> str:
    # The subprocess must import this very checkout's app package, installed or not.
    here = str(Path(app.__file__).resolve().parent.parent)
    return os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)


def triton_config(spec: Spec) -> str:
    volume = spec.input
    return f"""\
# Written by `convatlas models build`: NVIDIA Triton serves {MODEL_FILE} with this.
name: "{spec.id}"
platform: "onnxruntime_onnx"
max_batch_size: {TRITON_MAX_BATCH}
input [
  {{
    name: "{INPUT_NAME}"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ {volume.channels}, {volume.height}, {volume.width} ]
  }}
]
output [
  {{
    name: "{OUTPUT_NAME}"
    data_type: TYPE_FP32
    dims: [ {_classes(spec)} ]
  }}
]
dynamic_batching {{
  preferred_batch_size: [ 8 ]
  max_queue_delay_microseconds: 2000
}}
"""


def build_manifest(
    spec: Spec,
    provenance: w.Provenance,
    files: dict[str, dict[str, Any]],
    layers: list[FeatureLayer],
    parity: dict[str, Any],
) -> dict[str, Any]:
    """The manifest as JSON data; app/inference/manifest.py is its schema."""
    volume = spec.input
    outputs = [
        {
            "output": layer.name,
            "index": layer.index,
            "name": layer.name,
            "kind": layer.kind,
            "channels": layer.channels,
            "height": layer.height,
            "width": layer.width,
        }
        for layer in layers
    ]
    return {
        "format": MANIFEST_FORMAT,
        "id": spec.id,
        "name": spec.name,
        "spec_sha256": spec_fingerprint(spec),
        "opset": OPSET,
        "input": {
            "name": INPUT_NAME,
            "height": volume.height,
            "width": volume.width,
            "channels": volume.channels,
            "layout": "NCHW",
            "dtype": "float32",
        },
        "output": {"name": OUTPUT_NAME, "classes": _classes(spec), "kind": _output_kind(spec)},
        "preprocess": _preprocess(spec),
        "labels": {"set": LABEL_SET, "count": LABEL_COUNT},
        "weights": _weights_entry(provenance),
        "model": files["model"],
        "features": {**files["features"], "outputs": outputs},
        "parity": {
            "batch": PARITY_BATCH,
            "max_abs_diff": parity["max_abs_diff"],
            "max_abs_reference": parity["max_abs_reference"],
            "scaled_diff": parity["scaled_diff"],
            "features_scaled_diff": parity["features_scaled_diff"],
            "tolerance": PARITY_TOLERANCE,
        },
        "versions": _versions(str(parity["onnxruntime"])),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _preprocess(spec: Spec) -> dict[str, Any]:
    if spec.input.height != spec.input.width or spec.input.channels != 3:
        raise ExportError(f"{spec.id}: only square RGB inputs are served")
    if spec.input.height > RESIZE:
        raise ExportError(
            f"{spec.id}: a {spec.input.height} crop needs more than a {RESIZE} resize"
        )
    return {
        "resize": RESIZE,
        "crop": spec.input.height,
        "interpolation": "bilinear",
        "antialias": True,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
    }


def _classes(spec: Spec) -> int:
    linear = [layer for layer in spec.layers if isinstance(layer, Linear)]
    classes = linear[-1].out_features if linear else 0
    if classes != LABEL_COUNT:
        raise ExportError(f"{spec.id}: serves ImageNet-1k classifiers only, not {classes} classes")
    return classes


def _output_kind(spec: Spec) -> str:
    return "probabilities" if spec.layers[-1].kind == "softmax" else "logits"


def _weights_entry(provenance: w.Provenance) -> dict[str, Any]:
    entry = {
        "kind": provenance.kind,
        "source": provenance.source,
        "sha256": provenance.sha256,
        "seed": provenance.seed,
        "note": provenance.note,
    }
    return {key: value for key, value in entry.items() if value is not None}


def _versions(onnxruntime: str) -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime,
        "convatlas": metadata.version("convatlas"),
    }


def spec_fingerprint(spec: Spec) -> str:
    """sha256 of what shapes the exported files: the input, the layers, the export format."""
    layers = [layer.model_dump(exclude={"notes", "lecture"}) for layer in spec.layers]
    payload = {
        "input": spec.input.model_dump(),
        "layers": layers,
        "export": EXPORT_FORMAT,
        "opset": OPSET,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def read_current(model_dir: Path, spec: Spec) -> dict[str, Any] | None:
    """The existing manifest, if it describes a finished build of this very spec."""
    try:
        manifest: dict[str, Any] = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
        files = [manifest["model"], manifest["features"]]
        complete = all(_intact(model_dir / f["path"], f) for f in files)
        fresh = manifest["format"] == MANIFEST_FORMAT
        fresh = fresh and manifest["spec_sha256"] == spec_fingerprint(spec)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return manifest if complete and fresh and (model_dir / CONFIG).is_file() else None


def _intact(path: Path, recorded: dict[str, Any]) -> bool:
    """The file is the one the manifest records: size first (cheap), then its sha256, so a
    damaged file of the right size is rebuilt rather than kept."""
    return bool(
        path.stat().st_size == recorded["bytes"] and w.sha256_of(path) == recorded["sha256"]
    )


def _provenance(manifest: dict[str, Any]) -> w.Provenance:
    entry = manifest["weights"]
    return w.Provenance(entry["kind"], entry.get("source"), entry.get("sha256"), entry.get("seed"))


def _without_note(provenance: w.Provenance) -> w.Provenance:
    return w.Provenance(provenance.kind, provenance.source, provenance.sha256, provenance.seed)


def _describe(manifest: dict[str, Any]) -> str:
    entry = manifest["weights"]
    provenance = w.Provenance(
        entry["kind"],
        entry.get("source"),
        entry.get("sha256"),
        entry.get("seed"),
        entry.get("note"),
    )
    return provenance.describe()


def _file_entry(path: Path, relative: str) -> dict[str, Any]:
    return {"path": relative, "bytes": path.stat().st_size, "sha256": w.sha256_of(path)}


@contextlib.contextmanager
def _partial(folder: Path, name: str) -> Iterator[Path]:
    """A temporary file beside the final one; gone afterwards unless renamed into place."""
    handle, temp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=PARTIAL, dir=folder)
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def _remove_stale_partials(root: Path) -> None:
    """Remove the temporary files a killed build left in any net's folder, not only in the
    nets this run builds. Call it only holding the build lock: no other build can be writing
    then, so every file of ours named like a partial one is stale."""
    for spec_id in builtin_registry().ids():
        for path in (root / spec_id).glob(f".*{PARTIAL}"):
            if OUR_PARTIAL.fullmatch(path.name) and path.is_file():
                # A leftover that cannot be removed is no reason not to build.
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    with _partial(path.parent, path.name) as temp:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)


@contextlib.contextmanager
def build_lock(root: Path, say: Say) -> Iterator[None]:
    """One build at a time per repository (the server's background build and `make models`)."""
    with (root / LOCK_FILE).open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another build of {root} to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
