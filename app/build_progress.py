"""How `convatlas models build` shows its work: progress on stderr, results on stdout.

On a terminal each net gets a bar of its three steps (weights, export, parity check) that ends
on its status; anywhere else (a pipe, a log file such as the server's models/build.log) each
step is one plain line with the seconds since the net began. Either way each net's outcome is
one line on stdout as soon as it is known, and notes (no weights offline, waiting for another
build) go to stderr. Both implement app.nets.progress.BuildProgress.
"""

from __future__ import annotations

import shutil
import time
from typing import Any, TextIO

from app.nets.progress import BUILD_STEPS, BuildStep

# "vgg16 |########    | 2/3, parity check [00:41]": tqdm writes the postfix after ", ".
BAR_FORMAT = "{desc} |{bar:12}| {n_fmt}/{total_fmt}{postfix} [{elapsed}]"


class PlainProgress:
    """One line per step, for a stream that is not a terminal."""

    def __init__(self, progress: TextIO, results: TextIO) -> None:
        self._progress = progress
        self._results = results
        self._started: dict[str, float] = {}

    def started(self, net_id: str) -> None:
        self._started[net_id] = time.monotonic()

    def step(self, net_id: str, step: BuildStep) -> None:
        number = BUILD_STEPS.index(step) + 1
        seconds = time.monotonic() - self._started.get(net_id, time.monotonic())
        self.note(f"{net_id}: {number}/{len(BUILD_STEPS)} {step} (at {seconds:.1f} s)")

    def finished(self, net_id: str, status: str, message: str) -> None:
        self._started.pop(net_id, None)
        print(f"{net_id}: {status}: {message}", file=self._results, flush=True)

    def note(self, message: str) -> None:
        print(message, file=self._progress, flush=True)


class TerminalProgress:
    """A tqdm bar per net on the terminal, left in place when the net is done: a failed net's
    bar shows the step it failed in."""

    def __init__(self, progress: TextIO, results: TextIO) -> None:
        from tqdm import tqdm  # the `build` extra, like the rest of the model build

        self._tqdm = tqdm
        self._progress = progress
        self._results = results
        self._bars: dict[str, Any] = {}

    def started(self, net_id: str) -> None:
        size = shutil.get_terminal_size()
        self._bars[net_id] = self._tqdm(
            total=len(BUILD_STEPS),
            desc=net_id,
            file=self._progress,
            bar_format=BAR_FORMAT,
            leave=True,
            # A terminal that reports no size (0 x 0) would get no bar: then 80 x 24.
            ncols=size.columns,
            nrows=size.lines,
        )

    def step(self, net_id: str, step: BuildStep) -> None:
        bar = self._bars[net_id]
        bar.n = BUILD_STEPS.index(step)  # the steps before it are done
        bar.set_postfix_str(step)

    def finished(self, net_id: str, status: str, message: str) -> None:
        bar = self._bars.pop(net_id)
        if status != "failed":  # built now, or already: every step is done
            bar.n = len(BUILD_STEPS)
        bar.set_postfix_str(status)
        bar.close()
        self._tqdm.write(f"{net_id}: {status}: {message}", file=self._results)

    def note(self, message: str) -> None:
        self._tqdm.write(message, file=self._progress)


def for_streams(progress: TextIO, results: TextIO) -> PlainProgress | TerminalProgress:
    """Bars when ``progress`` is a terminal, plain lines otherwise."""
    if progress.isatty():
        return TerminalProgress(progress, results)
    return PlainProgress(progress, results)
