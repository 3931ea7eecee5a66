"""The convatlas command, run as a user runs it."""

import argparse
import builtins
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import app
from app.build_progress import PlainProgress, TerminalProgress, for_streams
from app.cli import EXIT_FAILED, EXIT_MISSING, EXIT_OK, EXIT_USAGE, main, parser
from app.nets.progress import BUILD_STEPS
from app.specs import builtin_registry
from tests.goldens import golden_csv, golden_json_text, golden_table, golden_text

ROOT = Path(__file__).resolve().parents[1]
# The minimal example, verbatim: it must be accepted as is.
TINY = json.loads((Path(__file__).resolve().parent / "golden" / "specs" / "tiny.json").read_text())


def test_list_names_every_net(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(spec_id in out for spec_id in builtin_registry().ids())
    assert "138.36 M" in out  # vgg16


@pytest.mark.parametrize(
    ("fmt", "golden"), [("json", golden_json_text), ("csv", golden_csv), ("text", golden_text)]
)
@pytest.mark.parametrize("net_id", builtin_registry().ids())
def test_table_prints_the_golden_file(
    capsys: pytest.CaptureFixture[str], net_id: str, fmt: str, golden: Callable[[str], str]
) -> None:
    assert main(["table", net_id, "--format", fmt]) == 0
    assert capsys.readouterr().out == golden(net_id)


def test_table_json_has_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "vgg16", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == golden_table("vgg16")
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


# Conventions: --version, help for every option, exit codes in --help, stdout and stderr.


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"convatlas {app.__version__}\n"


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _subparsers(sub)


def test_every_option_and_command_has_help() -> None:
    checked = 0
    for command in _subparsers(parser()):
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                assert all(choice.help for choice in action._choices_actions), command.prog
                continue
            assert action.help, (command.prog, action.dest)
            assert action.help != argparse.SUPPRESS, (command.prog, action.dest)
            checked += 1
    assert checked >= 15


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["table"],
        ["list"],
        ["models", "build"],
        ["serve"],
        ["cluster", "deploy"],
        ["cluster", "status"],
    ],
)
def test_help_lists_the_exit_statuses(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    out = capsys.readouterr().out
    assert "exit status:" in out
    for code in (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_MISSING):
        assert re.search(rf"^  {code}  \S", out, re.M), (argv, code)


def test_a_usage_error_goes_to_stderr_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["table", "--format", "xml", "vgg16"])
    assert exited.value.code == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "invalid choice: 'xml'" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["models", "build", "resnet50"], "unknown net 'resnet50'"),
        (["models", "build", "--weights", "x.pth"], "--weights needs exactly one net id"),
        (["models", "build", "vgg11", "--weights", "x.pth", "--untrained"], "--weights needs"),
    ],
)
def test_models_build_refuses_bad_arguments_on_stderr(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--root", str(tmp_path / "models")]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert not (tmp_path / "models").exists()


def import_fails(monkeypatch: pytest.MonkeyPatch, module: str, missing: str) -> None:
    """Importing ``module`` fails as if the install lacked ``missing`` (an extra's package)."""
    real_import = builtins.__import__

    def without(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == module:
            raise ModuleNotFoundError(f"No module named '{missing}'", name=missing)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)


def test_models_build_without_torch_says_which_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "app.building.build", None)  # as if torch were missing
    import_fails(monkeypatch, "app.building.build", "torch")
    assert main(["models", "build", "--root", str(tmp_path)]) == EXIT_MISSING
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "needs torch, which this install lacks: install convatlas[build]" in captured.err


def test_models_build_shows_each_step_on_stderr_and_its_result_on_stdout(tmp_path: Path) -> None:
    """The command as a pipe sees it (stderr is not a terminal): a line per step, in order, on
    stderr; the net's outcome and the summary, and nothing else, on stdout."""
    command = [sys.executable, "-m", "app.cli", "models", "build", "alexnet-lecture"]
    command += ["--untrained", "--root", str(tmp_path)]
    first = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    assert first.returncode == EXIT_OK, first.stderr
    steps = [line for line in first.stderr.splitlines() if line.startswith("alexnet-lecture: ")]
    assert [re.sub(r" \(at .*\)$", "", line) for line in steps] == [
        "alexnet-lecture: 1/3 weights",
        "alexnet-lecture: 2/3 export",
        "alexnet-lecture: 3/3 parity check",
    ]
    out = first.stdout.splitlines()
    assert len(out) == 2
    assert out[0].startswith("alexnet-lecture: built: ")
    assert (
        out[1]
        == "1 built, 0 up to date, 0 failed; untrained (seeded random weights): alexnet-lecture"
    )
    again = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    assert again.returncode == EXIT_OK
    assert "weights" not in again.stderr  # nothing to do: no step starts
    assert again.stdout.splitlines()[0].startswith("alexnet-lecture: up to date: ")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_each_net_gets_a_bar_that_ends_on_its_status() -> None:
    stderr, stdout = Terminal(), io.StringIO()
    progress = for_streams(stderr, stdout)
    assert isinstance(progress, TerminalProgress)
    progress.started("vgg16")
    for step in BUILD_STEPS:
        progress.step("vgg16", step)
        assert step in stderr.getvalue().rsplit("\r", 1)[-1]
    progress.note("vgg16: offline: falling back to untrained")
    progress.finished("vgg16", "built", "12.0 s")
    progress.started("vgg19")
    progress.finished("vgg19", "up to date", "untrained")
    screen = stderr.getvalue()
    final = [line.rsplit("\r", 1)[-1] for line in screen.split("\n") if line.strip()]
    assert any(line.startswith("vgg16 |") and "| 3/3, built [" in line for line in final), final
    assert any(line.startswith("vgg19 |") and "| 3/3, up to date [" in line for line in final)
    assert "vgg16: offline: falling back to untrained" in screen
    assert stdout.getvalue() == "vgg16: built: 12.0 s\nvgg19: up to date: untrained\n"


def test_elsewhere_progress_is_plain_lines() -> None:
    stderr, stdout = io.StringIO(), io.StringIO()
    progress = for_streams(stderr, stdout)
    assert isinstance(progress, PlainProgress)
    progress.started("vgg16")
    progress.step("vgg16", "export")
    assert "\r" not in stderr.getvalue()
    assert re.fullmatch(r"vgg16: 2/3 export \(at \d+\.\d s\)\n", stderr.getvalue())


def test_cluster_deploy_refuses_an_unknown_net_before_reaching_any_cluster(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["cluster", "deploy", "resnet50", "--address", "127.0.0.1:1"]
    assert main(argv) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "convatlas cluster deploy: unknown net 'resnet50'" in captured.err


def test_cluster_deploy_with_nothing_built_says_to_build_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["cluster", "deploy", "--root", str(tmp_path), "--address", "127.0.0.1:1"]
    assert main(argv) == EXIT_FAILED
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"no built net in {tmp_path}: run `convatlas models build` first" in captured.err


def test_cluster_deploy_of_a_net_not_built_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["cluster", "deploy", "vgg11", "--root", str(tmp_path), "--address", "127.0.0.1:1"]
    assert main(argv) == EXIT_FAILED
    captured = capsys.readouterr()
    assert "convatlas cluster deploy: not built: run `convatlas models build` first" in (
        captured.err
    )


@pytest.mark.parametrize("command", ["deploy", "status"])
def test_cluster_without_ray_says_which_extra(
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "vgg11").mkdir()
    monkeypatch.delitem(sys.modules, "app.cluster.deploy", raising=False)
    import_fails(monkeypatch, "app.cluster.deploy", "ray")
    extra = ["--root", str(tmp_path)] if command == "deploy" else []
    assert main(["cluster", command, *extra]) == EXIT_MISSING
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "needs ray, which this install lacks: install convatlas[cluster]" in captured.err


def test_cluster_status_with_no_cluster_there_fails_at_once_saying_so() -> None:
    from scripts.liveserver import free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    command = [sys.executable, "-m", "app.cli", "cluster", "status", "--address", address]
    # Its own process: this one may have joined a test cluster already (tests/cluster).
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == EXIT_FAILED
    assert done.stdout == ""
    assert f"cannot reach the Ray cluster at {address}: Connection refused" in done.stderr
