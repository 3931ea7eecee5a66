"""What decoding a picture costs in memory, estimated from its header before any pixel is read,
and the budgets that bound it: one per picture and one shared by every decode in progress.

Pillow keeps 8-bit multi-band pictures (RGB, RGBA, LA, CMYK) at 4 bytes a pixel, L and P at 1,
16-bit greyscale at 2, 32-bit at 4. Decoding a WebP goes through libwebp's own RGBA canvases
(two while it composes an animation's frame) before Pillow copies the frame, so a WebP costs
about three RGBA copies of its canvas. After decoding, the conversion to 8-bit RGB makes
full-size copies of its own (16-bit to its high byte, alpha composited over white, a palette
expanded); ``reduce`` first (a box filter by a whole factor, keeping the shorter side at least
twice the 256 every net resizes to) makes those copies small. The estimate counts what exists at
the worst moment; tests/inference/test_decode_budget.py measures real peaks against it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.inference.errors import ImageRejected, Overloaded

if TYPE_CHECKING:
    from app.settings import Settings

MIB = 1024 * 1024
BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
WEBP_CANVASES = 3
SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
# Modes Pillow's reduce() takes; a palette or 16-bit picture is converted (or its high byte
# taken) at full size first.
REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"})
REDUCED_SIDE = 512  # the shorter side a reduced picture keeps at least (2 x 256)


def stored_bytes(mode: str) -> int:
    """Bytes per pixel Pillow stores ``mode`` in."""
    return BYTES_PER_PIXEL.get(mode, 4)


@dataclass(frozen=True)
class Estimate:
    """Peak bytes to decode one picture: full size throughout, or reduced before converting."""

    width: int
    height: int
    mode: str
    decode_bytes: int  # the decoded picture (and its decoder's buffers)
    full_bytes: int  # peak when converted at full size
    reduced_bytes: int  # peak when reduced right after decoding
    reduce_factor: int  # 1: no reduction possible

    def describe(self, format: str) -> str:
        return f"a {self.width}x{self.height} {format} in mode {self.mode}"


def reduce_factor(width: int, height: int) -> int:
    return max(1, min(width, height) // REDUCED_SIDE)


def _conversion_bytes(mode: str, pixels: int, transparent: bool) -> int:
    """The full-size copies converting to 8-bit RGB makes besides the decoded picture."""
    if mode == "RGB" and not transparent:
        return 0
    if mode in SIXTEEN_BIT:
        # the array of the values, (for 32-bit: its clipped copy,) the high byte, the L picture
        # made of it, RGB
        return pixels * (stored_bytes(mode) * (2 if mode == "I" else 1) + 1 + 1 + 4)
    if mode in {"RGBA", "LA", "La", "PA", "P"} or transparent:
        return pixels * (4 + 4)  # the RGBA to composite, and the RGB it is composited onto
    return pixels * 4  # convert("RGB")


def _before_reduce_bytes(mode: str, pixels: int, transparent: bool) -> int:
    """The full-size copies still made when the picture is reduced before converting."""
    if mode in SIXTEEN_BIT:
        return pixels * (stored_bytes(mode) * (2 if mode == "I" else 1) + 1 + 1)
    if mode not in REDUCIBLE or (transparent and mode != "RGBA"):
        return pixels * 4  # to RGBA or RGB first
    return 0


def estimate(width: int, height: int, mode: str, format: str, transparent: bool) -> Estimate:
    pixels = width * height
    decoded = pixels * stored_bytes(mode)
    if format == "WEBP":
        decoded = pixels * 4 * WEBP_CANVASES
    factor = reduce_factor(width, height)
    small = math.ceil(pixels / (factor * factor)) * (4 + 4 + 4)
    full = decoded + _conversion_bytes(mode, pixels, transparent)
    reduced = decoded + _before_reduce_bytes(mode, pixels, transparent) + small
    return Estimate(width, height, mode, decoded, full, reduced, factor)


class MemoryBudget:
    """Bytes every decode in progress shares: a decode waits for its estimate to fit, no longer
    than its wait, then gets 503 with Retry-After. One decode larger than the whole budget runs
    alone (the per-picture budget is what refuses those)."""

    def __init__(self, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self.used = 0
        self.peak = 0
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int, wait_s: float) -> Iterator[None]:
        deadline = time.monotonic() + wait_s
        with self._changed:
            while self.used and self.used + nbytes > self.total_bytes:
                left = deadline - time.monotonic()
                if left <= 0:
                    reason = (
                        f"decoding needs {nbytes / MIB:,.0f} MiB and other pictures being decoded "
                        f"hold {self.used / MIB:,.0f} of {self.total_bytes / MIB:,.0f} MiB"
                    )
                    raise Overloaded(reason, retry_after_s=1)
                self._changed.wait(left)
            self.used += nbytes
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._changed:
                self.used -= nbytes
                self._changed.notify_all()


@dataclass(frozen=True)
class DecodeBudget:
    """The per-picture budget, the shared one, and how long a decode may wait for the latter."""

    per_image_bytes: int
    memory: MemoryBudget
    wait_s: float

    def plan(self, found: Estimate, format: str) -> tuple[int, int]:
        """(bytes to reserve, reduce factor) for this picture, or ImageRejected (413) naming
        the picture, the estimate and the budget when even the reduced decode is over it."""
        if found.full_bytes <= self.per_image_bytes:
            return found.full_bytes, 1
        if found.reduce_factor > 1 and found.reduced_bytes <= self.per_image_bytes:
            return found.reduced_bytes, found.reduce_factor
        need = min(found.full_bytes, found.reduced_bytes)
        message = (
            f"decoding {found.describe(format)} would take about {need / MIB:,.0f} MiB of "
            f"memory, over the per-picture budget of {self.per_image_bytes / MIB:,.0f} MiB; "
            "send a smaller picture (or a JPEG)"
        )
        raise ImageRejected("over_budget", message)


def decode_budget(settings: Settings) -> DecodeBudget:
    """The budgets a service's decodes share (one MemoryBudget per service)."""
    return DecodeBudget(
        per_image_bytes=settings.decode_budget_bytes,
        memory=MemoryBudget(settings.decode_memory_bytes),
        wait_s=settings.decode_wait_s,
    )
