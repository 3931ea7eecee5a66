"""python -m scripts.reliability [--quick] [--only NAME ...] [--write-doc]

Builds the model repository it needs (untrained; a no-op once built), runs the scenarios, prints
each pass criterion as it is checked, writes artifacts/reliability/results.md and, with
--write-doc, docs/reliability.md. Exits 1 if any criterion failed.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from app.inference.providers import nvidia_driver_present
from scripts.reliability import doc
from scripts.reliability.report import Result, markdown
from scripts.reliability.scenarios import SCENARIOS, Context
from scripts.reliability.server import ROOT

ARTIFACTS = ROOT / "artifacts" / "reliability"
MODELS = ARTIFACTS / "models"
NETS = ("alexnet-lecture", "zfnet-lecture", "vgg16")


def build_models() -> str:
    command = [sys.executable, "-m", "app.cli", "models", "build", "--untrained"]
    command += ["--root", str(MODELS), *NETS]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"model build failed:\n{done.stdout}{done.stderr}")
    nets = " ".join(NETS)
    return f"convatlas models build --untrained --root artifacts/reliability/models {nets}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short loads: a smoke run")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="these scenarios")
    parser.add_argument("--write-doc", action="store_true", help="write docs/reliability.md")
    args = parser.parse_args()
    build = build_models()
    context = Context(MODELS, ARTIFACTS / "scratch", args.quick)
    context.work.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    started = time.monotonic()
    for name in args.only or list(SCENARIOS):
        print(f"== {name}", flush=True)
        results.append(SCENARIOS[name](context))
    took = time.monotonic() - started
    failed = [result.key for result in results if not result.passed]
    print(f"== {len(results) - len(failed)}/{len(results)} scenarios passed in {took:.0f} s")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "results.md").write_text(markdown(results) + "\n")
    if args.write_doc:
        run = doc.Run(date.today().isoformat(), machine(), build, took, args.quick)
        Path(ROOT / "docs" / "reliability.md").write_text(doc.render(run, results))
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def machine() -> str:
    cores = len(os.sched_getaffinity(0))
    gpu = "an NVIDIA driver" if nvidia_driver_present() else "no GPU"
    return f"{cores}-core CPU ({platform.machine()}), {gpu}, Python {platform.python_version()}"


if __name__ == "__main__":
    sys.exit(main())
