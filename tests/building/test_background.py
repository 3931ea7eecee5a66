"""The server's background build: the command it runs, and its child reaped once it ends."""

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.building import background
from app.settings import Settings


def test_the_build_is_every_net_smallest_first_into_the_repository() -> None:
    command = background.build_command_line(Path("models-here"))
    build = [sys.executable, "-m", "app.cli", "models", "build", "--root", "models-here"]
    assert command[: len(build)] == build
    assert command[len(build) :] == ["--low-priority", *background.smallest_first()]


@pytest.fixture
def sleeping_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[subprocess.Popen[bytes]]:
    """The background build started as the server starts it, running a child that sleeps
    until the test ends it (a real build takes minutes)."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    monkeypatch.setattr(background, "build_command_line", lambda _root: sleeper)
    settings = Settings(models_dir=tmp_path / "models", build_on_start=True)
    build = background.start_background_build(settings)
    assert build is not None
    yield build
    build.kill()  # only if the test failed before ending it
    build.wait()


def test_a_finished_build_is_reaped_not_left_a_zombie(
    sleeping_build: subprocess.Popen[bytes],
) -> None:
    reapers = [t for t in threading.enumerate() if t.name.endswith(f" {sleeping_build.pid}")]
    assert [t.name for t in reapers] == [f"{background.REAPER} {sleeping_build.pid}"]
    assert sleeping_build.returncode is None  # still sleeping: nothing reaped it yet
    os.kill(sleeping_build.pid, signal.SIGTERM)  # not terminate(): that would reap it itself
    reapers[0].join(timeout=60)
    assert not reapers[0].is_alive()
    assert sleeping_build.returncode == -signal.SIGTERM
    with pytest.raises(ChildProcessError):  # no zombie left to collect
        os.waitpid(sleeping_build.pid, os.WNOHANG)


def test_the_server_can_still_stop_a_running_build(
    sleeping_build: subprocess.Popen[bytes],
) -> None:
    """What the server does on shutdown, while the reaper waits for the same child."""
    assert sleeping_build.poll() is None
    sleeping_build.terminate()
    assert sleeping_build.wait(timeout=60) == -signal.SIGTERM
    assert sleeping_build.poll() == -signal.SIGTERM


def test_a_low_priority_process_is_last_for_the_cpu_and_idle_for_the_disk() -> None:
    """What `models build --low-priority` does first, in a child of its own (nice cannot be
    undone by an unprivileged process)."""
    code = (
        "import os\n"
        "from app.building.background import io_priority_class, lowest_priority\n"
        "before = io_priority_class(os.getpid())\n"
        "lowest_priority()\n"
        "print(os.nice(0), before, io_priority_class(os.getpid()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    nice, before, after = result.stdout.split()
    assert nice == str(background.LOWEST_NICE)
    assert before != "3"  # a fresh process is not idle-class already: the change is real
    assert after == "3"  # IOPRIO_CLASS_IDLE
