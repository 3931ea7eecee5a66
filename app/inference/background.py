"""Build the model repository in the background while the server already answers.

The web app calls start_background_build() once at startup: it runs `convatlas models build` as
a child process (torch stays out of the server process), smallest nets first so the first ones
can be served within seconds. The build is idempotent and quick when everything is built, holds
the repository's build lock (so the service reports "a build is running" for nets not yet there),
and writes its output to models/build.log. A thread reaps the child as soon as it ends, so a
finished build does not linger as a zombie until the server stops.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from app.core.calculator import builtin_table
from app.settings import Settings
from app.specs import builtin_registry

LOG_FILE = "build.log"
REAPER = "convatlas-build-reaper"  # the reaping thread's name, followed by the child's pid


def smallest_first() -> list[str]:
    """Every built-in net id, fewest parameters first."""
    return sorted(
        builtin_registry().ids(), key=lambda spec_id: builtin_table(spec_id).totals.params
    )


def build_command_line(root: Path) -> list[str]:
    """`convatlas models build` into ``root``, every net, smallest first."""
    command = [sys.executable, "-m", "app.cli", "models", "build", "--root", str(root)]
    return [*command, *smallest_first()]


def start_background_build(settings: Settings) -> subprocess.Popen[bytes] | None:
    """Start the build unless Settings.build_on_start is off; it is reaped when it ends, and
    the caller may still poll(), terminate() or wait() it."""
    if not settings.build_on_start:
        return None
    root = Path(settings.models_dir)
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOG_FILE).open("ab") as log:
        build = subprocess.Popen(  # the child keeps its own copy of the log's descriptor
            build_command_line(root),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in `make run` stops the server, not a half build
        )
    _reap_when_done(build)
    return build


def _reap_when_done(build: subprocess.Popen[bytes]) -> None:
    """Wait for the build in a daemon thread (the server never blocks on it, nor waits for it
    to exit). Popen serialises waits with a lock, so the server's own poll(), terminate() and
    wait() on shutdown still work: poll() reads None while the build runs, as it should."""
    name = f"{REAPER} {build.pid}"
    threading.Thread(target=build.wait, name=name, daemon=True).start()
