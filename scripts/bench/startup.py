"""Start-up: the README's `make run` on a fresh clone, each net's load time, its first prediction,
and the RSS of a process with every model loaded.

1. ``git clone`` of the committed HEAD into a temporary folder, then ``make run PORT=...`` there,
   as the README says (it installs .venv from the machine's package cache/index, then starts
   uvicorn, which starts building the models in the background). Timed to the first 200 of
   ``/``; then everything it started is stopped, by process id, and the folder removed.
2. Per net, smallest first, alternating: a child process (scripts.bench.loader) loads the net's
   session the way the service does (its load time and RSS after), then a fresh server, default
   settings, answers the net's first prediction over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.building.background import smallest_first
from scripts.bench import images, loadgen
from scripts.bench.common import MIB, ROOT, Context, build_models
from scripts.bench.contention import descendants
from scripts.bench.report import Section, target
from scripts.bench.server import Server, serve
from scripts.liveserver import free_port

CLONE_WANTED_S = 60.0
FIRST_PREDICTION_SLACK_S = 2.0
CLONE_TIMEOUT_S = 900.0
STOP_TIMEOUT_S = 20.0
LOADER_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class CloneStart:
    commit: str
    clone_s: float
    install_s: float | None  # until .venv/.installed appeared
    first_page_s: float | None  # from `make run` to the first 200 of /
    log_tail: str


@dataclass(frozen=True)
class NetStart:
    net: str
    load_s: float  # in a fresh process that loads only this net
    first_prediction_s: float
    server_inference_ms: float
    load_all_s: float  # in the process that loads every net, one after the other
    rss_after: int  # that process's RSS after this net


def run(context: Context) -> Section:
    section = Section("startup", "Start-up, load times and memory with every model loaded")
    clone = _fresh_clone_start(context)
    built = build_models(context.models_root)
    baseline, nets = _loads_and_first_predictions(context)
    _describe(section, clone, baseline, nets)
    _judge(section, clone, nets)
    section.commands += [
        'git clone . "$TMP/convatlas" && cd "$TMP/convatlas" && make run PORT=<free port>',
        built.command,
        "python -m scripts.bench --only startup",
    ]
    return section


def _fresh_clone_start(context: Context) -> CloneStart:
    scratch = Path(tempfile.mkdtemp(prefix="convatlas-fresh-clone-"))
    try:
        return _clone_and_run(scratch, context.quick)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _clone_and_run(scratch: Path, quick: bool) -> CloneStart:
    clone = scratch / "convatlas"
    started = time.monotonic()
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    clone_s = time.monotonic() - started
    commit = subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    log_path = scratch / "make-run.log"
    with log_path.open("wb") as log:
        make = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=clone,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            install_s, first_page_s = _watch(make, clone, port, 120.0 if quick else CLONE_TIMEOUT_S)
        finally:
            _stop_tree(make)
    tail = "\n".join(log_path.read_text(errors="replace").strip().splitlines()[-15:])
    return CloneStart(commit, clone_s, install_s, first_page_s, tail)


def _clean_env() -> dict[str, str]:
    """This environment without the bench's own settings or virtualenv: as a shell would be."""
    skip = ("CONVATLAS_", "VIRTUAL_ENV", "PYTHONPATH")
    return {k: v for k, v in os.environ.items() if not k.startswith(skip)}


def _watch(
    make: subprocess.Popen[bytes], clone: Path, port: int, timeout_s: float
) -> tuple[float | None, float | None]:
    started = time.monotonic()
    installed: float | None = None
    while time.monotonic() - started < timeout_s and make.poll() is None:
        now = time.monotonic() - started
        if installed is None and (clone / ".venv" / ".installed").exists():
            installed = now
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2.0).status_code == 200:
                return installed, time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return installed, None


def _stop_tree(root: subprocess.Popen[bytes]) -> None:
    """Stop `make` and every process under it (the background build runs in its own session,
    so not in make's process group): listed first, then signalled by id."""
    pids = [*descendants(root.pid), root.pid]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        root.poll()
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
    root.wait()


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _loads_and_first_predictions(context: Context) -> tuple[int, list[NetStart]]:
    """Per net, alternating: its load in a fresh process, then its first prediction on the
    server; then one process that loads every net (its RSS with all of them in memory)."""
    photo = images.jpeg(images.VGA)
    nets = smallest_first()[:3] if context.quick else smallest_first()
    alone: list[tuple[float, float, float]] = []
    with serve(context.models_root) as server:
        for net in nets:
            load_s = float(_load_in_fresh_process(context.models_root, [net])[-1]["load_s"])
            alone.append((load_s, *_first_prediction(server, net, photo)))
    together = _load_in_fresh_process(context.models_root, nets)
    baseline, each = int(together[0]["rss"]), together[1:]
    results = [
        NetStart(net, load_s, wall, inference_ms, float(all_["load_s"]), int(all_["rss"]))
        for net, (load_s, wall, inference_ms), all_ in zip(nets, alone, each, strict=True)
    ]
    return baseline, results


def _load_in_fresh_process(root: Path, nets: list[str]) -> list[dict[str, Any]]:
    """scripts.bench.loader's lines: its RSS with nothing loaded, then one line per net."""
    command = [sys.executable, "-m", "scripts.bench.loader", str(root)]
    done = subprocess.run(
        command,
        cwd=ROOT,
        input="\n".join(nets) + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=LOADER_TIMEOUT_S,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _first_prediction(server: Server, net: str, photo: bytes) -> tuple[float, float]:
    request = loadgen.post_file(f"/api/predict/{net}", "image", "photo.jpg", "image/jpeg", photo)
    load = loadgen.run_load(
        server.port, [request], clients=1, max_requests=1, max_seconds=120, keep_bodies=True
    )
    if not load.ok:
        raise RuntimeError(f"first prediction of {net} failed: {load.answers} {load.errors}")
    answer = load.ok[0]
    return answer.seconds, float(json.loads(answer.body)["timings_ms"]["inference"])


def _describe(section: Section, clone: CloneStart, baseline: int, nets: list[NetStart]) -> None:
    section.add("### `make run` on a fresh clone", "")
    page = f"{clone.first_page_s:.1f} s" if clone.first_page_s is not None else "never (failed)"
    install = f"{clone.install_s:.1f} s" if clone.install_s is not None else "not finished"
    section.add(
        f"Commit {clone.commit} cloned in {clone.clone_s:.1f} s. `make run`: the install "
        f"(`.venv` from python3.11, torch and `pip install -e '.[dev]'` from the machine's local "
        f"wheel folder and package index, pip's own cache empty) finished after {install}; the "
        f"first 200 of `/` came {page} after `make run` started. The server's background model "
        "build had started; it and the server were stopped right after.",
        "",
    )
    if clone.first_page_s is None:
        section.add("Last lines of its output:", "", "```", clone.log_tail, "```", "")
    section.add("### Each net: load time, first prediction, memory", "")
    section.add(
        "Load: creating the net's ONNX Runtime session through `InferenceService` (the sha256 "
        "check of the file included), in a fresh process that loads only that net (page cache "
        "warm: the files were just built or read). First prediction: the first "
        "`POST /api/predict/{id}` (640x480 JPEG) for that net on one fresh server (default "
        "settings, so its cache evicts as it fills), whose session loads inside the request. "
        "Nets smallest first, the load and the first prediction alternating net by net. Then one "
        "process loads every net, one after the other, with no cache budget: its load times and "
        "RSS are the last two columns.",
        "",
    )
    rows = [
        (
            n.net,
            f"{n.load_s:.2f}",
            f"{n.first_prediction_s:.2f}",
            f"{n.server_inference_ms / 1000:.2f}",
            f"{n.first_prediction_s - n.load_s:+.2f}",
            f"{n.load_all_s:.2f}",
            f"{n.rss_after / MIB:.0f}",
        )
        for n in nets
    ]
    section.table(
        (
            "net",
            "load s",
            "first prediction s",
            "server's inference (run only) s",
            "first - load s",
            "load s, all in one process",
            "its RSS after, MiB",
        ),
        rows,
    )
    section.add(
        f"RSS of the process that loads every net: {baseline / MIB:.0f} MiB with nothing "
        f"loaded, {nets[-1].rss_after / MIB:.0f} MiB with all {len(nets)} models loaded.",
        "",
    )


def _judge(section: Section, clone: CloneStart, nets: list[NetStart]) -> None:
    page = clone.first_page_s
    section.targets.append(
        target(
            "fresh clone: `make run` to the first page",
            f"<= {CLONE_WANTED_S:.0f} s",
            f"{page:.1f} s" if page is not None else "no page served",
            page is not None and page <= CLONE_WANTED_S,
        )
    )
    worst = max(nets, key=lambda n: n.first_prediction_s - n.load_s)
    section.targets.append(
        target(
            "every net's first prediction",
            f"<= its load time + {FIRST_PREDICTION_SLACK_S:.0f} s",
            f"worst {worst.net}: {worst.first_prediction_s:.2f} s vs load {worst.load_s:.2f} s",
            all(n.first_prediction_s <= n.load_s + FIRST_PREDICTION_SLACK_S for n in nets),
        )
    )
