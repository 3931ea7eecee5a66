"""Build the model repository in the background while the server already answers.

The web app calls start_background_build() once at startup: it runs `convatlas models build` as
a child process (torch stays out of the server process), smallest nets first so the first ones
can be served within seconds, at the lowest CPU priority (nice 19) and the idle I/O class, so
it never competes with the requests the server answers. The build is idempotent and quick when
everything is built, holds the repository's build lock (so the service reports "a build is
running" for nets not yet there), and writes its output to models/build.log. A thread reaps the
child as soon as it ends, so a finished build does not linger as a zombie until the server
stops.

This module imports neither torch nor the build: only the child process does.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
from pathlib import Path

from app.core.calculator import builtin_table
from app.repository.layout import LOG_FILE
from app.settings import Settings
from app.specs import builtin_registry

REAPER = "convatlas-build-reaper"  # the reaping thread's name, followed by the child's pid
LOWEST_NICE = 19

# ioprio_set(2): who = this process, class IDLE (3), shifted as the kernel's IOPRIO_PRIO_VALUE.
_IOPRIO_SET = {"x86_64": 251, "aarch64": 30}
_IOPRIO_WHO_PROCESS = 1
_IOPRIO_CLASS_IDLE = 3
_IOPRIO_CLASS_SHIFT = 13


def smallest_first() -> list[str]:
    """Every built-in net id, fewest parameters first."""
    return sorted(
        builtin_registry().ids(), key=lambda spec_id: builtin_table(spec_id).totals.params
    )


def build_command_line(root: Path) -> list[str]:
    """`convatlas models build` into ``root``, every net, smallest first."""
    command = [sys.executable, "-m", "app.cli", "models", "build", "--root", str(root)]
    return [*command, "--low-priority", *smallest_first()]


def lowest_priority() -> None:
    """Make this process the last in line for the CPU and the disk (`models build
    --low-priority` calls it first thing; no hook runs between fork and exec in a server
    with threads). The I/O class is best effort: a kernel or machine without ioprio_set keeps its
    default class, and the CPU priority still applies."""
    os.nice(LOWEST_NICE - os.nice(0))
    number = _IOPRIO_SET.get(os.uname().machine)
    if number is None:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    value = _IOPRIO_CLASS_IDLE << _IOPRIO_CLASS_SHIFT
    libc.syscall(number, _IOPRIO_WHO_PROCESS, 0, value)


def io_priority_class(pid: int) -> int | None:
    """The I/O scheduling class of ``pid`` (3: idle), by ioprio_get(2); None where unknown."""
    number = {"x86_64": 252, "aarch64": 31}.get(os.uname().machine)
    if number is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    value = int(libc.syscall(number, _IOPRIO_WHO_PROCESS, pid))
    return None if value < 0 else value >> _IOPRIO_CLASS_SHIFT


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
