"""scripts/gpu-check: refuses plainly without a GPU; its timing path works (CPU self-test)."""

import subprocess
from pathlib import Path

import pytest

from app import gpu_check
from app.inference.providers import nvidia_driver_present

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(nvidia_driver_present(), reason="a GPU machine: the refusal is not observable")
def test_without_a_gpu_the_script_fails_at_once_and_says_why() -> None:
    result = subprocess.run(
        [str(REPO / "scripts" / "gpu-check")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert result.stdout.startswith("gpu-check: FAIL: CUDA cannot run here: ")


def test_the_cpu_self_test_times_and_checks_placement(
    models_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # its scratch folder is relative
    args = ["--allow-cpu", "--models", str(models_root), "--nets", "alexnet-lecture"]
    assert gpu_check.main(args) == 0
    out = capsys.readouterr().out
    [row] = [line for line in out.splitlines() if line.startswith("alexnet-lecture ")]
    numbers = [float(cell) for cell in row.split()[1:5]]
    assert all(number > 0 for number in numbers)
    assert "self-test passed on the CPU" in out


def test_a_missing_model_fails_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["--allow-cpu", "--models", str(tmp_path), "--nets", "vgg16"]
    assert gpu_check.main(args) == 1
    assert "gpu-check: FAIL: vgg16: not built" in capsys.readouterr().out


def test_the_cpu_self_test_builds_what_it_times_in_its_own_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --models: the check builds the net (untrained) into its scratch folder, in-process,
    then times it on the CPU standing in for CUDA."""
    monkeypatch.chdir(tmp_path)
    spawned: list[object] = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **_: spawned.append(args))
    assert gpu_check.main(["--allow-cpu", "--nets", "alexnet-lecture"]) == 0
    assert spawned == []
    assert (tmp_path / "artifacts/gpu-check/models/alexnet-lecture/1/model.onnx").is_file()
    assert "self-test passed on the CPU" in capsys.readouterr().out
