"""What a model build reports while it works, for whoever shows it.

The build calls a ``BuildProgress`` at each net's start, at each of its steps and at its end,
and never prints progress itself: the ``convatlas models build`` command draws a bar per net on
a terminal and plain lines elsewhere (app/build_progress.py); tests pass their own recorder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

# A net's build, in order: its weights (download or seed, then loading them into the torch
# net), the ONNX export of the classifier and its feature-map model, then ONNX Runtime's
# outputs checked against torch's.
BuildStep = Literal["weights", "export", "parity check"]
BUILD_STEPS: tuple[BuildStep, ...] = ("weights", "export", "parity check")


class BuildProgress(Protocol):
    def started(self, net_id: str) -> None:
        """A net's turn has come (it may still turn out to be up to date)."""

    def step(self, net_id: str, step: BuildStep) -> None:
        """``step`` begins; the one before it, if any, is done."""

    def finished(self, net_id: str, status: str, message: str) -> None:
        """The net is "built", "up to date" or "failed"; ``message`` says how or why."""


class SayProgress:
    """One line per net when it is done, through ``say``: what a caller that shows no
    progress (a test, a script) hears."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say

    def started(self, net_id: str) -> None:
        pass

    def step(self, net_id: str, step: BuildStep) -> None:
        pass

    def finished(self, net_id: str, status: str, message: str) -> None:
        self._say(f"{net_id}: {status}: {message}")
