"""The convatlas command, run as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.core.calculator import builtin_table
from app.specs import builtin_registry

# The minimal example, verbatim: it must be accepted as is.
TINY = json.loads((Path(__file__).resolve().parent / "golden" / "specs" / "tiny.json").read_text())


def test_list_names_every_net(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(spec_id in out for spec_id in builtin_registry().ids())
    assert "138.36 M" in out  # vgg16


def test_table_json_is_the_core_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "vgg16", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == builtin_table("vgg16").model_dump(mode="json")
    assert set(printed) >= {"id", "name", "input", "layers", "totals", "warnings"}
    assert set(printed["layers"][0]) >= {
        "index",
        "name",
        "kind",
        "input",
        "output",
        "weights",
        "biases",
        "params",
        "macs",
        "flops",
        "activations",
        "receptive_field",
        "jump",
        "formula",
        "notes",
    }
    assert set(printed["totals"]) >= {
        "params",
        "weights",
        "biases",
        "macs",
        "flops",
        "activations",
        "conv_params",
        "fc_params",
    }


def test_table_text_reads_like_the_lecture(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "alexnet-lecture"]) == 0
    out = capsys.readouterr().out
    assert "55x55x96" in out
    assert "28,823,912" in out


def test_table_csv(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "alexnet-2012", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("index,name,kind,in_h")
    assert lines[-1].split(",")[11] == "60965224"


def test_own_spec_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    assert main(["table", "--spec", str(path), "--format", "json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["totals"]["params"] == 3 * 3 * 3 * 8 + 8 + 15 * 15 * 8 * 10 + 10


def test_bad_spec_file_names_the_layer_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = dict(TINY, layers=[{"kind": "conv", "name": "huge", "out_channels": 8, "kernel": 33}])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main(["table", "--spec", str(path)]) == 1
    err = capsys.readouterr().err
    assert "layer 0 (huge), field 'kernel': kernel 33 is larger than the padded input" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["table", "resnet50"], 2, "unknown net 'resnet50'; known: alexnet-2012"),
        (["table"], 2, "give a net id or --spec FILE"),
        (["table", "--spec", "/nonexistent.json"], 2, "cannot read /nonexistent.json"),
    ],
)
def test_usage_errors(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == code
    assert message in capsys.readouterr().err


def test_nan_in_a_spec_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nan.json"
    path.write_text('{"name": "x", "input": {"height": NaN}}')
    assert main(["table", "--spec", str(path)]) == 1
    assert "not valid JSON" in capsys.readouterr().err


def test_the_installed_command_runs() -> None:
    command = Path(sys.executable).with_name("convatlas")
    result = subprocess.run([command, "list"], capture_output=True, text=True, check=True)
    assert "zfnet-lecture" in result.stdout
