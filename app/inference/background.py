"""Build the model repository in the background while the server already answers.

The web app calls start_background_build() once at startup: it runs `convatlas models build` as
a child process (torch stays out of the server process), smallest nets first so the first ones
can be served within seconds. The build is idempotent and quick when everything is built, holds
the repository's build lock (so the service reports "a build is running" for nets not yet there),
and writes its output to models/build.log.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.core.calculator import builtin_table
from app.settings import Settings
from app.specs import builtin_registry

LOG_FILE = "build.log"


def smallest_first() -> list[str]:
    """Every built-in net id, fewest parameters first."""
    return sorted(
        builtin_registry().ids(), key=lambda spec_id: builtin_table(spec_id).totals.params
    )


def start_background_build(settings: Settings) -> subprocess.Popen[bytes] | None:
    """Start the build unless Settings.build_on_start is off; the caller may wait() or not."""
    if not settings.build_on_start:
        return None
    root = Path(settings.models_dir)
    root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "app.cli", "models", "build", "--root", str(root)]
    with (root / LOG_FILE).open("ab") as log:
        return subprocess.Popen(  # the child keeps its own copy of the log's descriptor
            [*command, *smallest_first()],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in `make run` stops the server, not a half build
        )
