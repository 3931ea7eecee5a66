"""The ``convatlas`` command: list the nets, print their tables, build the model repository."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from app.core.calculator import analyze, builtin_table
from app.core.errors import SpecInvalid, parse_json
from app.core.formatting import to_csv, to_json, to_text
from app.core.numbers import si_count
from app.core.table import Table
from app.specs import UnknownSpecError, builtin_registry

FORMATTERS: dict[str, Callable[[Table], str]] = {"text": to_text, "json": to_json, "csv": to_csv}


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
    return 0


def _load_spec_table(path: str) -> Table:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        raw = parse_json(text)
    except ValueError as error:
        raise SpecInvalid([]) from error
    return analyze(raw)


def _table(args: argparse.Namespace) -> int:
    if (args.id is None) == (args.spec is None):
        print("convatlas table: give a net id or --spec FILE (not both)", file=sys.stderr)
        return 2
    try:
        table = builtin_table(args.id) if args.id else _load_spec_table(args.spec)
    except UnknownSpecError as error:
        print(f"convatlas table: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"convatlas table: cannot read {args.spec}: {error.strerror}", file=sys.stderr)
        return 2
    except SpecInvalid as error:
        cause = error.__cause__
        detail = f"not valid JSON: {cause}" if cause else str(error)
        print(f"convatlas table: invalid spec\n{detail}", file=sys.stderr)
        return 1
    sys.stdout.write(FORMATTERS[args.format](table))
    return 0


def _models_build(args: argparse.Namespace) -> int:
    from app.nets.repository import build_command  # torch loads only for this command

    return build_command(
        args.ids, weights=args.weights, untrained=args.untrained, root=Path(args.root)
    )


def _serve(args: argparse.Namespace) -> int:
    from app.web.serve import serve  # the web stack loads only for this command

    serve(
        args.host,
        args.port,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        graceful_backstop_s=args.timeout_graceful_shutdown,
    )
    return 0


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="serve the app (what `make run` runs)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info", help="uvicorn's log level")
    serve.add_argument("--no-access-log", action="store_true", help="no line per request")
    serve.add_argument(
        "--timeout-graceful-shutdown",
        type=float,
        default=20.0,
        help="uvicorn's backstop behind CONVATLAS_SHUTDOWN_GRACE_S (seconds)",
    )
    serve.set_defaults(run=_serve)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="convatlas", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the built-in nets").set_defaults(run=_list)
    table = commands.add_parser("table", help="a net's layer table")
    table.add_argument("id", nargs="?", help="a built-in net id (see `convatlas list`)")
    table.add_argument("--spec", help="a JSON spec file of your own ('-' reads stdin)")
    table.add_argument("--format", choices=sorted(FORMATTERS), default="text")
    table.set_defaults(run=_table)
    models = commands.add_parser("models", help="the ONNX model repository")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    build = model_commands.add_parser("build", help="export nets to models/<id>/1/model.onnx")
    build.add_argument("ids", nargs="*", help="net ids (default: all)")
    build.add_argument("--weights", help="a checkpoint path or URL in torchvision's format")
    build.add_argument("--untrained", action="store_true", help="seeded random weights only")
    build.add_argument("--root", default="models", help="the model repository (default: models)")
    build.set_defaults(run=_models_build)
    _add_serve(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
