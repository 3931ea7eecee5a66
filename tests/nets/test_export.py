"""Export: every AlexNet/ZFNet variant plus one VGG, exported once into a temporary repository.

Checked here: onnx.checker, opset and the dynamic batch, ONNX Runtime against torch on fresh
random inputs (the classifier and every feature output), Triton's layout and config, the
manifest, the pretrained path with a checkpoint this module writes, and that a second build is a
quick no-op. The shared repository is read-only: a test that changes a repository gets a copy
of its own, and every test that uses it is checked to leave it as it found it.

Every other net runs through ONNX Runtime in a `slow` test (make test runs them): the plain VGGs
exported as they are, and the BatchNorm VGGs built from a checkpoint whose BatchNorm layers carry
random running statistics and affine parameters, so that an export that loses them cannot pass.
They run at their real 224 x 224 input: a VGG's export time is its weights' (the classifier's
120 M parameters do not shrink with the input), and at 224 the adaptive pool is what the server
runs.
"""

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from app.building import build as building
from app.building.build import build_models
from app.cli import main
from app.nets import export as export_module
from app.nets import weights
from app.nets.builder import SpecNet, build
from app.nets.describe import spec_fingerprint
from app.nets.export import OUTPUT_NAME, ExportError, export
from app.nets.triton import parse_config
from app.nets.weights import load_into
from app.repository import lock
from app.repository.manifest import read_manifest
from app.specs import Spec, builtin_registry
from scripts.liveserver import wait_for

UNTRAINED = ["alexnet-lecture", "zfnet-lecture", "alexnet-2012", "zfnet-2013", "vgg11-bn"]
PRETRAINED = "alexnet-torchvision"
ALL = [*UNTRAINED, PRETRAINED]
PLAIN_VGGS = ["vgg11", "vgg13", "vgg16", "vgg19"]
BATCHNORM_VGGS = ["vgg11-bn", "vgg13-bn", "vgg16-bn", "vgg19-bn"]
CPU = ["CPUExecutionProvider"]
GOLDEN_TABLES = Path(__file__).resolve().parents[1] / "golden" / "tables"
# The layers whose outputs the features model serves (docs/inference.md): every conv and pool.
FEATURE_KINDS = {"conv", "maxpool", "avgpool", "adaptiveavgpool"}


def sha256_of(path: Path) -> str:
    """hashlib's own digest, not the build's helper that wrote the manifest."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def save_checkpoint(net: nn.Module, folder: Path, stem: str) -> Path:
    """The state_dict in torchvision's format, named with its own sha256 prefix as theirs are."""
    draft = folder / f"{stem}.pth"
    torch.save(net.state_dict(), draft)
    named = folder / f"{stem}-{sha256_of(draft)[:8]}.pth"
    draft.rename(named)
    return named


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alexnet-torchvision weights in torchvision's format, named with their own sha256 prefix."""
    net = build(builtin_registry().get(PRETRAINED), seed=11)
    return save_checkpoint(net, tmp_path_factory.mktemp("checkpoint"), "alexnet-test")


@pytest.fixture(scope="module")
def repo(
    tmp_path_factory: pytest.TempPathFactory,
    checkpoint: Path,
    models_root: Path,
    repository_nets: tuple[str, ...],
) -> Iterator[Path]:
    """Shared by the module's tests, read-only: see _the_shared_repository_is_left_as_found.

    The nets the session's test repository holds (tests/conftest.py) were built there by this
    same call (untrained, each checked "built"), so they are hard-linked from it rather than
    exported a second time; the others are built here."""
    assert set(repository_nets) <= set(UNTRAINED)
    root = tmp_path_factory.mktemp("models")
    for spec_id in repository_nets:
        shutil.copytree(models_root / spec_id, root / spec_id, copy_function=os.link)
    quiet = {"root": root, "say": lambda _: None}
    rest = [spec_id for spec_id in UNTRAINED if spec_id not in repository_nets]
    built = build_models(rest, untrained=True, **quiet)
    built += build_models([PRETRAINED], weights=str(checkpoint), **quiet)
    assert [outcome.status for outcome in built] == ["built"] * (len(rest) + 1), built
    yield root
    shutil.rmtree(root)  # 1 GB that pytest would otherwise keep for three runs


def stamps(root: Path, *, lock: bool = True) -> dict[str, tuple[int, int]]:
    """Every file under ``root``, the build lock too unless ``lock`` is false: (size, mtime)."""
    found = (p for p in root.rglob("*") if p.is_file() and (lock or p.name != ".build.lock"))
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in found}


@pytest.fixture(autouse=True)
def _the_shared_repository_is_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    if "repo" not in request.fixturenames:
        yield
        return
    root: Path = request.getfixturevalue("repo")
    before = stamps(root)
    yield
    assert stamps(root) == before, "this test changed the shared repository: give it a copy"


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, emptied afterwards: the copies and full-size VGGs are gigabytes."""
    yield tmp_path
    for path in tmp_path.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def copy_of(repo: Path, folder: Path, spec_ids: list[str]) -> Path:
    """A repository of its own for a test that changes one: these nets' files, byte for byte."""
    root = folder / "models"
    for spec_id in spec_ids:
        shutil.copytree(repo / spec_id, root / spec_id)
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


def golden_feature_rows(spec_id: str) -> list[dict[str, Any]]:
    """The conv and pool rows before the flatten, from the golden table (name, index, output)."""
    rows: list[dict[str, Any]] = json.loads((GOLDEN_TABLES / f"{spec_id}.json").read_text())[
        "layers"
    ]
    flatten = next((row["index"] for row in rows if row["kind"] == "flatten"), len(rows))
    return [row for row in rows[:flatten] if row["kind"] in FEATURE_KINDS]


def place(row: dict[str, Any]) -> tuple[int, str, int, int, int]:
    """A golden row's index, kind and output volume (C, H, W)."""
    volume = row["output"]
    return row["index"], row["kind"], volume["channels"], volume["height"], volume["width"]


def assert_features_match(path: Path, net: SpecNet, spec: Spec) -> None:
    """The features model's outputs: named and shaped as the golden table's conv and pool rows,
    and equal to what the net's own layers compute on the same input."""
    x = random_batch(spec, 1)
    with torch.no_grad():
        traced = [output.numpy() for output in net.trace(x)]
    rows = golden_feature_rows(spec.id or "")
    session = ort.InferenceSession(str(path), providers=CPU)
    names = [output.name for output in session.get_outputs()]
    assert names == [row["name"] for row in rows]
    for ours, row in zip(session.run(names, {"input": x.numpy()}), rows, strict=True):
        volume = row["output"]
        assert ours.shape == (1, volume["channels"], volume["height"], volume["width"])
        reference = traced[row["index"]]
        differs = float(np.abs(ours - reference).max())
        allowed = 1e-4 * max(1.0, float(np.abs(reference).max()))
        assert differs <= allowed, f"{row['name']}: max |diff| {differs:.2e} > {allowed:.2e}"


@pytest.mark.parametrize("spec_id", ALL)
def test_every_feature_output_equals_torchs(repo: Path, checkpoint: Path, spec_id: str) -> None:
    net = torch_net(spec_id, checkpoint)
    assert_features_match(repo / spec_id / "features.onnx", net, builtin_registry().get(spec_id))


def test_every_net_runs_through_onnx_runtime_in_a_test() -> None:
    assert sorted({*ALL, *PLAIN_VGGS, *BATCHNORM_VGGS}) == sorted(builtin_registry().ids())


PARITY = 1e-4  # of the largest logit


def assert_logits_match(path: Path, net: SpecNet, spec: Spec) -> np.ndarray:
    """ONNX Runtime's logits against torch's on a fresh batch of 3; torch's logits returned."""
    x = random_batch(spec, 3)
    with torch.no_grad():
        expected = net(x).numpy()
    session = ort.InferenceSession(str(path), providers=CPU)
    [ours] = session.run([OUTPUT_NAME], {"input": x.numpy()})
    assert ours.shape == expected.shape == (3, 1000)
    differs, allowed = float(np.abs(ours - expected).max()), PARITY * float(np.abs(expected).max())
    assert differs <= allowed, f"ONNX Runtime vs torch: max |diff| {differs:.2e} > {allowed:.2e}"
    return expected


@pytest.mark.slow
@pytest.mark.parametrize("spec_id", PLAIN_VGGS)
def test_the_other_vggs_run_in_onnx_runtime_as_in_torch(spec_id: str, scratch: Path) -> None:
    spec = builtin_registry().get(spec_id)
    net = build(spec)
    export(net, random_batch(spec, 2), scratch / "model.onnx", [OUTPUT_NAME])
    assert_logits_match(scratch / "model.onnx", net, spec)


def batchnorms(net: nn.Module) -> list[nn.BatchNorm2d]:
    return [module for module in net.modules() if isinstance(module, nn.BatchNorm2d)]


def randomise_batchnorm(net: nn.Module, seed: int) -> None:
    """Running mean and variance, scale and shift as training leaves them: none 0 or 1."""
    generator = torch.Generator().manual_seed(seed)

    def draw(n: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    with torch.no_grad():
        for norm in batchnorms(net):
            size = norm.num_features
            norm.running_mean.copy_(draw(size, -0.5, 0.5))
            norm.running_var.copy_(draw(size, 0.25, 2.0))
            norm.weight.copy_(draw(size, 0.5, 1.5))
            norm.bias.copy_(draw(size, -0.3, 0.3))


@pytest.mark.slow
@pytest.mark.parametrize("spec_id", BATCHNORM_VGGS)
def test_batchnorm_statistics_from_a_checkpoint_reach_onnx_runtime(
    spec_id: str, scratch: Path
) -> None:
    spec = builtin_registry().get(spec_id)
    trained = build(spec, seed=21).eval()  # torch's reference: BatchNorm from its statistics
    randomise_batchnorm(trained, seed=21)
    checkpoint = save_checkpoint(trained, scratch, spec_id)
    root = scratch / "models"
    [outcome] = build_models([spec_id], weights=str(checkpoint), root=root, say=lambda _: None)
    assert outcome.status == "built", outcome
    expected = assert_logits_match(root / spec_id / "1" / "model.onnx", trained, spec)
    assert_features_match(root / spec_id / "features.onnx", trained, spec)
    # The statistics matter here: torch without them is far outside the tolerance.
    for norm in batchnorms(trained):
        norm.reset_parameters()  # running mean 0, variance 1, scale 1, shift 0
    with torch.no_grad():
        plain = trained(random_batch(spec, 3)).numpy()
    assert np.abs(plain - expected).max() > 100 * PARITY * np.abs(expected).max()


@pytest.mark.parametrize("spec_id", ALL)
def test_the_layout_is_a_triton_model_repository(repo: Path, spec_id: str) -> None:
    spec = builtin_registry().get(spec_id)
    config = parse_config((repo / spec_id / "config.pbtxt").read_text())
    assert (config.name, config.platform) == (spec_id, "onnxruntime_onnx")
    assert config.max_batch_size >= 1
    [model_input], [output] = config.input, config.output
    assert (model_input.name, list(model_input.dims)) == (
        "input",
        [3, spec.input.height, spec.input.width],
    )
    assert (output.name, list(output.dims)) == ("logits", [1000])
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
    served = [
        (o.output, o.name, o.index, o.kind, o.channels, o.height, o.width)
        for o in manifest.features.outputs
    ]
    assert served == [
        (row["name"], row["name"], *place(row)) for row in golden_feature_rows(spec_id)
    ]
    if spec_id == PRETRAINED:
        assert manifest.weights.kind == "pretrained"
        assert manifest.weights.source == str(checkpoint)
        assert manifest.weights.sha256 == sha256_of(checkpoint)
    else:
        assert (manifest.weights.kind, manifest.weights.seed) == ("untrained", 0)
    assert manifest.parity.scaled_diff <= manifest.parity.tolerance


def test_a_second_build_is_a_quick_no_op(repo: Path, checkpoint: Path, scratch: Path) -> None:
    root = copy_of(repo, scratch, ALL)
    before = stamps(root, lock=False)
    outcomes = build_models(UNTRAINED, untrained=True, root=root, say=lambda _: None)
    outcomes += build_models([PRETRAINED], weights=str(checkpoint), root=root, say=lambda _: None)
    assert [outcome.status for outcome in outcomes] == ["up to date"] * len(ALL)
    assert stamps(root, lock=False) == before
    assert not [p for p in root.rglob("*") if p.name.endswith((".partial", ".staging"))]


def left_by_a_killed_build(root: Path, spec_id: str) -> Path:
    """A staging folder named as a build names them, with a half-written export in it, that no
    build will ever clean up itself (SIGKILL runs no clean-up)."""
    folder = Path(tempfile.mkdtemp(prefix=f".{spec_id}.", suffix=".staging", dir=root))
    (folder / ".model.onnx").write_bytes(b"half an export")
    return folder


def test_any_build_removes_what_a_killed_build_left_for_every_net(
    repo: Path, scratch: Path
) -> None:
    root = copy_of(repo, scratch, ["alexnet-lecture", "zfnet-lecture"])
    # One net that was built before, one whose first build was killed; neither is built now.
    stale = [left_by_a_killed_build(root, spec_id) for spec_id in ("zfnet-lecture", "vgg16")]
    (root / ".notes.staging").mkdir()  # a folder of a user's, named alike
    not_ours = [root / "notes.staging.txt", root / ".notes.staging" / "notes.txt"]
    not_ours.append(root / "zfnet-lecture.staging")
    for path in not_ours:
        path.write_text("a user's file")
    [outcome] = build_models(["alexnet-lecture"], untrained=True, root=root, say=lambda _: None)
    assert outcome.status == "up to date", outcome
    assert [path for path in stale if path.exists()] == []
    assert [path.read_text() for path in not_ours] == ["a user's file"] * len(not_ours)
    assert (root / "zfnet-lecture" / "manifest.json").is_file()  # the built net is untouched


def test_a_damaged_file_of_the_right_size_is_rebuilt(repo: Path, scratch: Path) -> None:
    root = copy_of(repo, scratch, ["alexnet-lecture"])
    model = root / "alexnet-lecture" / "1" / "model.onnx"
    size = model.stat().st_size
    with model.open("r+b") as file:  # flip one byte in the middle of the weights
        file.seek(size // 2)
        byte = file.read(1)
        file.seek(size // 2)
        file.write(bytes([byte[0] ^ 0xFF]))
    outcomes = build_models(["alexnet-lecture"], untrained=True, root=root, say=lambda _: None)
    assert [outcome.status for outcome in outcomes] == ["built"]
    manifest = json.loads((root / "alexnet-lecture" / "manifest.json").read_text())
    assert sha256_of(model) == manifest["model"]["sha256"]
    assert model.stat().st_size == size


def test_a_plain_build_keeps_pretrained_weights_without_downloading(
    repo: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_of(repo, scratch, [PRETRAINED])
    before = stamps(root, lock=False)
    tries: list[str] = []
    monkeypatch.setattr(weights.urllib.request, "urlopen", lambda url, **_: tries.append(url))
    [outcome] = build_models([PRETRAINED], root=root, say=lambda _: None)
    assert outcome.status == "up to date"
    assert outcome.weights is not None
    assert outcome.weights.kind == "pretrained"
    assert tries == []
    assert stamps(root, lock=False) == before
    assert read_manifest(root / PRETRAINED).weights.kind == "pretrained"


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
    monkeypatch.setattr(building, "PARITY_TOLERANCE", 0.0)  # no export is that exact
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
        with lock.build_lock(tmp_path, said.append):
            order.append("second")

    with lock.build_lock(tmp_path, said.append):
        assert (tmp_path / ".build.lock").read_text() == f"{os.getpid()}\n"
        thread = threading.Thread(target=second)
        thread.start()
        # The second builder says it waits when it finds the lock taken: the sign it is blocked.
        wait_for(lambda: bool(said), "the second builder waiting")
        assert thread.is_alive()  # blocked on the lock
        order.append("first")
    thread.join(timeout=10)
    assert order == ["first", "second"]
    assert said == [f"waiting for another build of {tmp_path} to finish"]
