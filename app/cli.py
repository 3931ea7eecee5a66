"""The ``convatlas`` command: list the nets, print their tables, build the model repository,
serve the app. Results go to stdout; progress and errors go to stderr."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import app
from app.core.calculator import analyze, builtin_table
from app.core.errors import SpecInvalid, parse_json
from app.core.formatting import to_csv, to_json, to_text
from app.core.numbers import si_count
from app.core.table import Table
from app.settings import Settings, get_settings
from app.specs import UnknownSpecError, builtin_registry

if TYPE_CHECKING:  # the build needs torch: it loads only for `models build`
    from app.building.build import Outcome

DESCRIPTION = """\
ConvAtlas: classic convolutional networks (AlexNet, ZFNet, VGG), layer by layer.
Results go to stdout; progress and errors go to stderr."""
FORMATTERS: dict[str, Callable[[Table], str]] = {"text": to_text, "json": to_json, "csv": to_csv}

# Exit statuses, as --help lists them.
EXIT_OK = 0
EXIT_FAILED = 1  # the input or the work failed: an invalid spec, a net that did not build
EXIT_USAGE = 2  # the command line is wrong: an unknown net, an unreadable file (argparse's too)
EXIT_MISSING = 3  # this install lacks what the command needs (the `build` extra)
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_CODES = """\
exit status:
  0  success
  1  the input or the work failed (an invalid spec; a net that did not build)
  2  usage error (an unknown option or net, a file that cannot be read)
  3  this install lacks what the command needs: `models build` needs the build extra,
     convatlas[build] (torch, onnx); `cluster` needs the cluster extra, convatlas[cluster] (ray)
  130, 143  interrupted (Ctrl-C, SIGTERM); a half-built net leaves no files behind"""
# What `models build` imports that only the `build` extra installs.
BUILD_EXTRA_MODULES = frozenset({"torch", "onnx", "onnxscript", "tqdm", "tritonclient", "grpc"})
CLUSTER_EXTRA_MODULE = "ray"


def _error(command: str, message: str) -> None:
    print(f"convatlas {command}: {message}", file=sys.stderr)


def _list(_: argparse.Namespace) -> int:
    rows = [("id", "name", "input", "params", "depth")]
    for spec in builtin_registry():
        table = builtin_table(spec.id or "")
        size = f"{spec.input.width}x{spec.input.height}x{spec.input.channels}"
        rows.append(
            (spec.id or "", spec.name, size, si_count(table.totals.params), str(table.totals.depth))
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return EXIT_OK


def _load_spec_table(path: str) -> Table:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        raw = parse_json(text)
    except ValueError as error:
        raise SpecInvalid([]) from error
    return analyze(raw)


def _table(args: argparse.Namespace) -> int:
    if (args.id is None) == (args.spec is None):
        _error("table", "give a net id or --spec FILE (not both)")
        return EXIT_USAGE
    try:
        table = builtin_table(args.id) if args.id else _load_spec_table(args.spec)
    except UnknownSpecError as error:
        _error("table", str(error))
        return EXIT_USAGE
    except OSError as error:
        _error("table", f"cannot read {args.spec}: {error.strerror}")
        return EXIT_USAGE
    except SpecInvalid as error:
        cause = error.__cause__
        detail = f"not valid JSON: {cause}" if cause else str(error)
        _error("table", f"invalid spec\n{detail}")
        return EXIT_FAILED
    sys.stdout.write(FORMATTERS[args.format](table))
    return EXIT_OK


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM (the server stopping its background build) unwinds like Ctrl-C, so every
    temporary file is removed on the way out instead of being left behind."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def _build_usage_error(args: argparse.Namespace) -> str | None:
    registry = builtin_registry()
    unknown = [spec_id for spec_id in args.ids if spec_id not in registry]
    if unknown:
        return str(UnknownSpecError(unknown[0], registry.ids()))
    if args.weights is not None and (args.untrained or len(args.ids) != 1):
        return "--weights needs exactly one net id and no --untrained"
    return None


def _models_build(args: argparse.Namespace) -> int:
    if (problem := _build_usage_error(args)) is not None:
        _error("models build", problem)
        return EXIT_USAGE
    try:  # torch loads only for this command
        from app.build_progress import for_streams
        from app.building.build import build_models
    except ModuleNotFoundError as error:
        if error.name not in BUILD_EXTRA_MODULES:
            raise
        missing = f"needs {error.name}, which this install lacks: install convatlas[build]"
        _error("models build", missing)
        return EXIT_MISSING
    _exit_cleanly_on_sigterm()
    if args.low_priority:
        from app.building.background import lowest_priority

        lowest_priority()
    progress = for_streams(sys.stderr, sys.stdout)
    outcomes = build_models(
        args.ids or builtin_registry().ids(),
        weights=args.weights,
        untrained=args.untrained,
        root=Path(args.root),
        say=progress.note,
        progress=progress,
    )
    print(_summary(outcomes))
    return EXIT_FAILED if any(outcome.status == "failed" for outcome in outcomes) else EXIT_OK


def _summary(outcomes: Sequence[Outcome]) -> str:
    """The build's last line: how many nets built, were up to date, failed; which untrained."""
    counts = {s: sum(o.status == s for o in outcomes) for s in ("built", "up to date", "failed")}
    line = ", ".join(f"{n} {status}" for status, n in counts.items())
    untrained = [o.id for o in outcomes if o.weights and o.weights.kind == "untrained"]
    if untrained:
        line += f"; untrained (seeded random weights): {', '.join(untrained)}"
    return line


def _cluster_settings(args: argparse.Namespace) -> Settings:
    """The Settings (CONVATLAS_* variables), with --address over CONVATLAS_RAY_ADDRESS."""
    settings = get_settings()
    if args.address is not None:
        settings = settings.model_copy(update={"ray_address": args.address})
    return settings


def _cluster_deploy(args: argparse.Namespace) -> int:
    command = "cluster deploy"
    registry = builtin_registry()
    unknown = [spec_id for spec_id in args.ids if spec_id not in registry]
    if unknown:
        _error(command, str(UnknownSpecError(unknown[0], registry.ids())))
        return EXIT_USAGE
    try:
        from app.cluster.deploy import cluster_state, deploy, status_text
        from app.repository.manifest import ManifestError
    except ModuleNotFoundError as error:
        return _cluster_missing(command, error)
    settings = _cluster_settings(args)
    root = Path(args.root)
    ids = args.ids or [spec_id for spec_id in registry.ids() if (root / spec_id).is_dir()]
    if not ids:
        _error(command, f"no built net in {root}: run `convatlas models build` first")
        return EXIT_FAILED
    try:
        deploy(settings, root, ids)
    except ManifestError as error:
        _error(command, f"{error}: run `convatlas models build` first")
        return EXIT_FAILED
    except (ConnectionError, RuntimeError) as error:  # no cluster there; a replica that fails
        _error(command, str(error).splitlines()[0])
        return EXIT_FAILED
    sys.stdout.write(status_text(cluster_state(settings)))
    return EXIT_OK


def _cluster_status(args: argparse.Namespace) -> int:
    try:
        from app.cluster.deploy import cluster_state, status_text
    except ModuleNotFoundError as error:
        return _cluster_missing("cluster status", error)
    try:
        state = cluster_state(_cluster_settings(args))
    except ConnectionError as error:
        _error("cluster status", str(error).splitlines()[0])
        return EXIT_FAILED
    sys.stdout.write(state.model_dump_json(indent=2) + "\n" if args.json else status_text(state))
    return EXIT_OK


def _cluster_missing(command: str, error: ModuleNotFoundError) -> int:
    if error.name != CLUSTER_EXTRA_MODULE:
        raise error
    _error(command, "needs ray, which this install lacks: install convatlas[cluster]")
    return EXIT_MISSING


def _serve(args: argparse.Namespace) -> int:
    from app.web.serve import serve  # the web stack loads only for this command

    serve(
        args.host,
        args.port,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        graceful_backstop_s=args.timeout_graceful_shutdown,
    )
    return EXIT_OK


# A type alias only: argparse's class cannot be subscripted at run time.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _command(
    commands: Commands, name: str, summary: str, description: str
) -> argparse.ArgumentParser:
    """A subcommand whose --help shows its description as written and the exit statuses."""
    return commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_table(commands: Commands) -> None:
    table = _command(
        commands,
        "table",
        "a net's layer table",
        "Print the layer table of a built-in net or of a JSON spec of your own:\n"
        "each layer's output volume, parameters, MACs and receptive field, then the totals.",
    )
    table.add_argument("id", nargs="?", help="a built-in net id (see `convatlas list`)")
    table.add_argument(
        "--spec", metavar="FILE", help="a JSON spec file of your own ('-' reads stdin)"
    )
    table.add_argument(
        "--format", choices=sorted(FORMATTERS), default="text", help="output format (default: text)"
    )
    table.set_defaults(run=_table)


def _add_models(commands: Commands) -> None:
    models = commands.add_parser(
        "models",
        help="the ONNX model repository",
        description="The ONNX model repository (models/ unless --root says otherwise).",
    )
    model_commands = models.add_subparsers(dest="models_command", required=True)
    build = _command(
        model_commands,
        "build",
        "export nets to models/<id>/1/model.onnx",
        "Build each net's ONNX models in three steps: weights, export, parity check\n"
        "(ONNX Runtime against torch). Nets already built are skipped. Progress goes to\n"
        "stderr, a bar per net on a terminal and plain lines elsewhere; each net's outcome\n"
        "and the summary go to stdout. Needs the build extra (torch).",
    )
    build.add_argument("ids", nargs="*", metavar="ID", help="net ids (default: every net)")
    build.add_argument(
        "--weights", metavar="PATH_OR_URL", help="a checkpoint in torchvision's format (one net)"
    )
    build.add_argument("--untrained", action="store_true", help="seeded random weights only")
    build.add_argument(
        "--root", default="models", help="the model repository (default: %(default)s)"
    )
    build.add_argument(
        "--low-priority",
        action="store_true",
        help="run at the lowest CPU and I/O priority (the server's background build does)",
    )
    build.set_defaults(run=_models_build)


def _add_serve(commands: Commands) -> None:
    serve = _command(
        commands,
        "serve",
        "serve the app (what `make run` runs)",
        "Serve the pages and the API (uvicorn). Missing models build in the background\n"
        "(CONVATLAS_BUILD_ON_START); every setting is a CONVATLAS_* environment variable.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug", "trace"),
        help="uvicorn's log level (default: %(default)s)",
    )
    serve.add_argument("--no-access-log", action="store_true", help="no line per request")
    serve.add_argument(
        "--timeout-graceful-shutdown",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="uvicorn's backstop behind CONVATLAS_SHUTDOWN_GRACE_S (default: %(default)s)",
    )
    serve.set_defaults(run=_serve)


def _add_cluster(commands: Commands) -> None:
    cluster = commands.add_parser(
        "cluster",
        help="inference on a Ray Serve cluster",
        description="Deploy the nets to a Ray Serve cluster and see its state (docs/scale-out.md).",
    )
    cluster_commands = cluster.add_subparsers(dest="cluster_command", required=True)
    deploy = _command(
        cluster_commands,
        "deploy",
        "deploy nets: one Serve deployment per net",
        "Deploy one Serve application with one deployment per net. Each net's model files\n"
        "go to the cluster through Ray's object store (no shared disk); each replica checks\n"
        "them against the manifest's sha256. Replicas, batching, autoscaling and resources\n"
        "come from the CONVATLAS_* settings (CONVATLAS_CLUSTER_*). Needs the cluster extra.",
    )
    deploy.add_argument("ids", nargs="*", metavar="ID", help="net ids (default: every built net)")
    deploy.add_argument(
        "--root", default="models", help="the model repository (default: %(default)s)"
    )
    status = _command(
        cluster_commands,
        "status",
        "each net's replicas, nodes, provider, weights and queue",
        "Per net: Serve's status, its replicas and the nodes they run on, their provider,\n"
        "weights and queue depth.",
    )
    status.add_argument("--json", action="store_true", help="the status as JSON")
    for command in (deploy, status):
        command.add_argument(
            "--address",
            metavar="ADDR",
            help="the Ray cluster (default: CONVATLAS_RAY_ADDRESS, else auto)",
        )
    deploy.set_defaults(run=_cluster_deploy)
    status.set_defaults(run=_cluster_status)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="convatlas",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root.add_argument("--version", action="version", version=f"%(prog)s {app.__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(
        commands,
        "list",
        "the built-in nets",
        "List the built-in nets: id, input, parameters, depth.",
    ).set_defaults(run=_list)
    _add_table(commands)
    _add_models(commands)
    _add_cluster(commands)
    _add_serve(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except KeyboardInterrupt:
        print("convatlas: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return result


if __name__ == "__main__":
    raise SystemExit(main())
