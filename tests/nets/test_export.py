"""Export: every AlexNet/ZFNet variant plus one VGG, exported once into a temporary repository.

Checked here: onnx.checker, opset and the dynamic batch, ONNX Runtime against torch on fresh
random inputs (the classifier and every feature output), Triton's layout and config, the
manifest, the pretrained path with a checkpoint this module writes, and that a second build is a
quick no-op. The other VGGs only differ in depth; `make bench`/scripts/gpu-check cover them all.
"""

import json
import os
import re
import tempfile
import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from app.cli import main
from app.inference.manifest import read_manifest
from app.nets import export as export_module
from app.nets import repository, weights
from app.nets.builder import build
from app.nets.export import ExportError, features_net
from app.nets.repository import build_models, spec_fingerprint
from app.nets.weights import load_into, sha256_of
from app.specs import Spec, builtin_registry

UNTRAINED = ["alexnet-lecture", "zfnet-lecture", "alexnet-2012", "zfnet-2013", "vgg11-bn"]
PRETRAINED = "alexnet-torchvision"
ALL = [*UNTRAINED, PRETRAINED]
CPU = ["CPUExecutionProvider"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alexnet-torchvision weights in torchvision's format, named with their own sha256 prefix."""
    folder = tmp_path_factory.mktemp("checkpoint")
    draft = folder / "alexnet.pth"
    torch.save(build(builtin_registry().get(PRETRAINED), seed=11).state_dict(), draft)
    named = folder / f"alexnet-test-{sha256_of(draft)[:8]}.pth"
    draft.rename(named)
    return named


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path) -> Path:
    root = tmp_path_factory.mktemp("models")
    quiet = {"root": root, "say": lambda _: None}
    built = build_models(UNTRAINED, untrained=True, **quiet)
    built += build_models([PRETRAINED], weights=str(checkpoint), **quiet)
    assert [outcome.status for outcome in built] == ["built"] * len(ALL), built
    return root


def torch_net(spec_id: str, checkpoint: Path) -> torch.nn.Module:
    spec = builtin_registry().get(spec_id)
    if spec_id != PRETRAINED:
        return build(spec)  # the untrained build's seed
    net = build(spec, seed=None)
    load_into(net, checkpoint)
    return net


def random_batch(spec: Spec, batch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(99)
    shape = (batch, 3, spec.input.height, spec.input.width)
    return torch.randn(shape, generator=generator)


@pytest.mark.parametrize("spec_id", ALL)
def test_the_checker_passes_with_opset_17_or_later(repo: Path, spec_id: str) -> None:
    for path in (repo / spec_id / "1" / "model.onnx", repo / spec_id / "features.onnx"):
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.load(str(path))
        [opset] = [entry.version for entry in model.opset_import if entry.domain in {"", "ai.onnx"}]
        assert opset >= 17
        [graph_input] = model.graph.input
        assert graph_input.name == "input"
        batch = graph_input.type.tensor_type.shape.dim[0]
        assert batch.dim_param
        assert not batch.HasField("dim_value")


@pytest.mark.parametrize("spec_id", ALL)
def test_onnx_runtime_equals_torch(repo: Path, checkpoint: Path, spec_id: str) -> None:
    spec = builtin_registry().get(spec_id)
    net = torch_net(spec_id, checkpoint)
    x = random_batch(spec, 3)  # not the build's batch of 2: the batch is dynamic
    with torch.no_grad():
        expected = net(x).numpy()
    session = ort.InferenceSession(str(repo / spec_id / "1" / "model.onnx"), providers=CPU)
    ours = session.run(["logits"], {"input": x.numpy()})[0]
    assert ours.shape == expected.shape == (3, 1000)
    assert np.abs(ours - expected).max() <= 1e-4
    # Untrained logits are small; relative to their size the agreement is far tighter still.
    assert np.abs(ours - expected).max() <= 1e-4 * np.abs(expected).max()


@pytest.mark.parametrize("spec_id", ALL)
def test_every_feature_output_equals_torchs(repo: Path, checkpoint: Path, spec_id: str) -> None:
    spec = builtin_registry().get(spec_id)
    features, layers = features_net(torch_net(spec_id, checkpoint), spec)  # type: ignore[arg-type]
    x = random_batch(spec, 1)
    with torch.no_grad():
        expected = [output.numpy() for output in features(x)]
    session = ort.InferenceSession(str(repo / spec_id / "features.onnx"), providers=CPU)
    names = [output.name for output in session.get_outputs()]
    assert names == [layer.name for layer in layers]
    for ours, reference in zip(session.run(names, {"input": x.numpy()}), expected, strict=True):
        assert ours.shape == reference.shape
        assert np.abs(ours - reference).max() <= 1e-4 * max(1.0, np.abs(reference).max())


@pytest.mark.parametrize("spec_id", ALL)
def test_the_layout_is_a_triton_model_repository(repo: Path, spec_id: str) -> None:
    spec = builtin_registry().get(spec_id)
    config = (repo / spec_id / "config.pbtxt").read_text()
    assert re.search(rf'^name: "{re.escape(spec_id)}"$', config, re.M)
    assert re.search(r'^platform: "onnxruntime_onnx"$', config, re.M)
    assert re.search(r"^max_batch_size: [1-9]\d*$", config, re.M)
    dims = f"dims: [ 3, {spec.input.height}, {spec.input.width} ]"
    assert 'name: "input"' in config
    assert dims in config
    assert 'name: "logits"' in config
    assert "dims: [ 1000 ]" in config
    versions = [p.name for p in (repo / spec_id).iterdir() if p.is_dir()]
    assert versions == ["1"]
    assert sorted(p.name for p in (repo / spec_id / "1").iterdir()) == ["model.onnx"]


@pytest.mark.parametrize("spec_id", ALL)
def test_the_manifest_describes_the_files_and_the_weights(
    repo: Path, checkpoint: Path, spec_id: str
) -> None:
    manifest = read_manifest(repo / spec_id)  # the inference layer's strict schema
    spec = builtin_registry().get(spec_id)
    assert (manifest.input.height, manifest.preprocess.crop) == (spec.input.height,) * 2
    assert manifest.spec_sha256 == spec_fingerprint(spec)
    assert manifest.model.sha256 == sha256_of(repo / spec_id / manifest.model.path)
    assert [o.name for o in manifest.features.outputs] == [
        layer.name for layer in features_net(build(spec), spec)[1]
    ]
    if spec_id == PRETRAINED:
        assert manifest.weights.kind == "pretrained"
        assert manifest.weights.source == str(checkpoint)
        assert manifest.weights.sha256 == sha256_of(checkpoint)
    else:
        assert (manifest.weights.kind, manifest.weights.seed) == ("untrained", 0)
    assert manifest.parity.scaled_diff <= manifest.parity.tolerance


def test_a_second_build_is_a_quick_no_op(repo: Path, checkpoint: Path) -> None:
    def stamps() -> dict[Path, int]:
        return {p: p.stat().st_mtime_ns for p in repo.rglob("*") if p.name != ".build.lock"}

    before = stamps()
    outcomes = build_models(UNTRAINED, untrained=True, root=repo, say=lambda _: None)
    outcomes += build_models([PRETRAINED], weights=str(checkpoint), root=repo, say=lambda _: None)
    assert [outcome.status for outcome in outcomes] == ["up to date"] * len(ALL)
    assert stamps() == before
    assert not [p for p in repo.rglob("*") if p.name.endswith(".partial")]


def left_by_a_killed_build(folder: Path, name: str) -> Path:
    """A temporary file named as a build names them, that no build will ever clean up itself."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=folder)
    os.close(handle)
    return Path(path)


def test_any_build_removes_what_a_killed_build_left_in_every_net(repo: Path) -> None:
    # One net that was built before, one whose first build was killed; neither is built now.
    killed = [repo / "zfnet-lecture", repo / "vgg16"]
    stale = [left_by_a_killed_build(f, n) for f in killed for n in ("model.onnx", "config.pbtxt")]
    not_ours = [killed[0] / "notes.partial.txt", killed[0] / ".notes.partial"]
    not_ours.append(killed[1] / "model.onnx.partial")
    for path in not_ours:
        path.write_text("a user's file")
    try:
        [outcome] = build_models(["alexnet-lecture"], untrained=True, root=repo, say=lambda _: None)
        assert outcome.status != "failed", outcome
        assert [path for path in stale if path.exists()] == []
        assert [path.read_text() for path in not_ours] == ["a user's file"] * len(not_ours)
    finally:  # the repository is shared with the other tests here
        for path in [*stale, *not_ours]:
            path.unlink(missing_ok=True)
        killed[1].rmdir()


def test_a_damaged_file_of_the_right_size_is_rebuilt(repo: Path) -> None:
    model = repo / "alexnet-lecture" / "1" / "model.onnx"
    size = model.stat().st_size
    with model.open("r+b") as file:  # flip one byte in the middle of the weights
        file.seek(size // 2)
        byte = file.read(1)
        file.seek(size // 2)
        file.write(bytes([byte[0] ^ 0xFF]))
    outcomes = build_models(["alexnet-lecture"], untrained=True, root=repo, say=lambda _: None)
    assert [outcome.status for outcome in outcomes] == ["built"]
    manifest = json.loads((repo / "alexnet-lecture" / "manifest.json").read_text())
    assert sha256_of(model) == manifest["model"]["sha256"]
    assert model.stat().st_size == size


def test_a_plain_build_keeps_pretrained_weights_without_downloading(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries: list[str] = []
    monkeypatch.setattr(weights.urllib.request, "urlopen", lambda url, **_: tries.append(url))
    [outcome] = build_models([PRETRAINED], root=repo, say=lambda _: None)
    assert outcome.status == "up to date"
    assert outcome.provenance is not None
    assert outcome.provenance.kind == "pretrained"
    assert tries == []
    assert read_manifest(repo / PRETRAINED).weights.kind == "pretrained"


def test_what_changes_the_model_changes_the_fingerprint() -> None:
    spec = builtin_registry().get("alexnet-lecture")
    renoted = spec.model_copy(update={"notes": ["a different note"], "name": "Renamed"})
    assert spec_fingerprint(renoted) == spec_fingerprint(spec)
    layers = list(spec.layers)
    layers[0] = layers[0].model_copy(update={"out_channels": 64})
    assert spec_fingerprint(spec.model_copy(update={"layers": layers})) != spec_fingerprint(spec)


def test_a_failed_export_leaves_no_half_written_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: Path) -> None:
        raise ExportError(f"onnx.checker refused {path.name}: a test says no")

    monkeypatch.setattr(export_module, "check", refuse)
    [outcome] = build_models(["alexnet-lecture"], untrained=True, root=tmp_path, say=lambda _: None)
    assert outcome.status == "failed"
    assert "a test says no" in outcome.message
    assert [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".build.lock"] == []


def test_a_parity_failure_fails_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repository, "PARITY_TOLERANCE", 0.0)  # no export is that exact
    [outcome] = build_models(["alexnet-lecture"], untrained=True, root=tmp_path, say=lambda _: None)
    assert outcome.status == "failed"
    assert "ONNX Runtime differs from torch" in outcome.message
    assert not (tmp_path / "alexnet-lecture" / "manifest.json").exists()


def test_the_command_checks_its_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = ["--root", str(tmp_path)]
    assert main(["models", "build", "resnet50", *root]) == 2
    assert "unknown net 'resnet50'" in capsys.readouterr().err
    two = ["vgg11", "vgg13", "--weights", "x-12345678.pth"]
    assert main(["models", "build", *two, *root]) == 2
    assert "--weights needs exactly one net id" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_a_second_builder_waits_for_the_first(tmp_path: Path) -> None:
    said: list[str] = []
    order: list[str] = []

    def second() -> None:
        with repository.build_lock(tmp_path, said.append):
            order.append("second")

    with repository.build_lock(tmp_path, said.append):
        assert (tmp_path / ".build.lock").read_text() == f"{os.getpid()}\n"
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive()  # blocked on the lock
        order.append("first")
    thread.join(timeout=10)
    assert order == ["first", "second"]
    assert said == [f"waiting for another build of {tmp_path} to finish"]
