"""fp16 export (app/nets/half.py, used by scripts/gpu-check): the file is float16 end to end, runs
on ONNX Runtime's CPU provider, agrees with the float32 net in torch, and is reused only while
its stamp still names the spec, seed and torch that made it.

One real export per module (about 15 s here); the stale cases that need no second export check
the stamp directly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from app.nets import half
from app.nets.builder import build
from app.specs import builtin_registry

NET = "alexnet-lecture"  # the smallest built-in net


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fp16 file and its stamp, made once; tests work on copies (``fp16_dir``)."""
    out = tmp_path_factory.mktemp("fp16")
    assert half.main([str(out), NET]) == 0
    return out


@pytest.fixture
def fp16_dir(exported: Path, tmp_path: Path) -> Path:
    """A copy of the exported directory that a test may change."""
    return Path(shutil.copytree(exported, tmp_path / "fp16"))


def _target(directory: Path) -> Path:
    return directory / f"{NET}.onnx"


def test_the_fp16_file_runs_on_the_cpu_and_agrees_with_the_float32_net(exported: Path) -> None:
    spec = builtin_registry().get(NET)
    session = ort.InferenceSession(str(_target(exported)), providers=["CPUExecutionProvider"])
    [given] = session.get_inputs()
    [answered] = session.get_outputs()
    assert (given.type, answered.type) == ("tensor(float16)", "tensor(float16)")
    shape = (3, spec.input.channels, spec.input.height, spec.input.width)  # batch is dynamic
    image = np.random.default_rng(7).standard_normal(shape).astype(np.float16)
    [logits] = session.run(None, {given.name: image})
    with torch.no_grad():
        reference = build(spec)(torch.from_numpy(image.astype(np.float32))).numpy()
    assert logits.dtype == np.float16
    assert logits.shape == reference.shape == (3, 1000)
    scale = float(np.abs(reference).max())
    # fp16 keeps ~3 significant digits; summed over 9216-wide dot products, well inside 1 %.
    np.testing.assert_allclose(logits.astype(np.float32), reference, rtol=0, atol=0.01 * scale)
    assert (logits.argmax(axis=1) == reference.argmax(axis=1)).all()


def test_a_stamped_file_is_reused(fp16_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _target(fp16_dir).read_bytes()

    def must_not_export(spec_id: str, path: Path) -> None:
        raise AssertionError(f"{spec_id} exported again over {path.name}, a current file")

    monkeypatch.setattr(half, "export_half", must_not_export)
    assert half.main([str(fp16_dir), NET]) == 0
    assert _target(fp16_dir).read_bytes() == before


def test_a_file_without_its_stamp_is_exported_again(exported: Path, fp16_dir: Path) -> None:
    """What the old half.py reused: any file at the path (here one from another net)."""
    target = _target(fp16_dir)
    target.write_bytes(b"an fp16 file from another spec")
    half.stamp_path(target).unlink()
    assert half.main([str(fp16_dir), NET]) == 0
    assert half.is_current(target, builtin_registry().get(NET))
    fresh = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert fresh.get_inputs()[0].type == "tensor(float16)"
    assert target.stat().st_size == _target(exported).stat().st_size


@pytest.mark.parametrize(
    ("field", "stale"),
    [
        ("spec_sha256", "0" * 64),  # the spec (or the export format) changed since
        ("seed", 1),
        ("torch", "2.0.0"),
    ],
)
def test_a_stamp_from_another_recipe_is_stale(fp16_dir: Path, field: str, stale: object) -> None:
    target = _target(fp16_dir)
    spec = builtin_registry().get(NET)
    assert half.is_current(target, spec)
    stamp = json.loads(half.stamp_path(target).read_text())
    stamp["recipe"][field] = stale
    half.stamp_path(target).write_text(json.dumps(stamp))
    assert not half.is_current(target, spec)


def test_a_file_changed_after_its_stamp_is_stale(fp16_dir: Path) -> None:
    target = _target(fp16_dir)
    with target.open("r+b") as file:
        file.seek(target.stat().st_size // 2)
        file.write(b"\x00\x01\x02\x03")
    assert not half.is_current(target, builtin_registry().get(NET))


def test_another_nets_stamp_does_not_fit(fp16_dir: Path) -> None:
    assert not half.is_current(_target(fp16_dir), builtin_registry().get("zfnet-lecture"))
