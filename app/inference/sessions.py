"""ONNX Runtime sessions: opened with the server's options, checked against their manifest, and
kept within a memory budget.

A session's memory is counted as its ONNX file's size (the weights dominate: a VGG is about
0.5 GB; once loaded, a CPU session holds 1.00-1.04 times its file). Loading takes about twice
that for a moment (ONNX Runtime parses the whole file, then copies the weights out of it), so
before a model loads the least recently used sessions are dropped until twice its size fits; the
one just loaded always stays, even alone above the budget. A run still using a dropped session
finishes with it; the memory goes when it does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import onnxruntime as ort

from app.inference.integrity import FileIdentity, file_identity
from app.repository.manifest import InputSpec
from app.settings import Settings

FLOAT_TENSOR = "tensor(float)"
# Peak memory while a model loads, in multiples of its file's size (measured: 1.76x for AlexNet,
# 1.91x for a VGG, on the CPU provider).
LOAD_PEAK = 2


class OrtSession(Protocol):
    """What the service uses of an ``onnxruntime.InferenceSession`` (tests wrap real ones)."""

    def run(
        self,
        output_names: Sequence[str] | None,
        input_feed: Mapping[str, Any],
        run_options: ort.RunOptions | None = None,
    ) -> list[Any]: ...

    def get_providers(self) -> list[str]: ...

    def get_inputs(self) -> list[Any]: ...

    def get_outputs(self) -> list[Any]: ...


# Opens a model file on the given providers: onnxruntime by default, a wrapper in tests.
SessionFactory = Callable[[Path, list[str], ort.SessionOptions], OrtSession]


class BrokenModel(Exception):
    """A model file that cannot be served as its manifest describes it; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SessionKey:
    path: Path
    sha256: str  # from the manifest: a rebuilt file is a new key


@dataclass(frozen=True)
class Loaded:
    session: OrtSession
    provider: str  # session.get_providers()[0]
    bytes: int
    max_batch: int | None = None  # None: any batch size (a dynamic batch dimension)

    def batch_limit(self, batch_max: int) -> int:
        return batch_max if self.max_batch is None else min(batch_max, self.max_batch)


@dataclass(frozen=True)
class FileStamp:
    """One version of a model file on disk (a rebuild renames a new file into place), read
    under one manifest (the key's sha256)."""

    key: SessionKey
    identity: FileIdentity


def file_stamp(key: SessionKey) -> FileStamp | None:
    identity = file_identity(key.path)
    return None if identity is None else FileStamp(key, identity)


def session_options(settings: Settings) -> ort.SessionOptions:
    """One batch runs at a time per device, so each run may use every core, and nothing more."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads or usable_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    spinning = "1" if settings.ort_spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    # The CPU arena keeps the largest batch's activations for good (about 0.5 GB more for a VGG
    # after one batch of 8); without it they are freed after each run, at no measurable cost.
    options.enable_cpu_mem_arena = False
    # ORT warns, on every CUDA session, that it keeps shape arithmetic on the CPU by design.
    options.log_severity_level = 3
    return options


def usable_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def ort_session(path: Path, providers: list[str], options: ort.SessionOptions) -> OrtSession:
    session: OrtSession = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    return session


def batch_capacity(session: OrtSession, spec: InputSpec, outputs: Sequence[str]) -> int | None:
    """How many images one run takes (None: any number), or BrokenModel when the session's
    input or outputs are not the ones the manifest describes."""
    inputs = session.get_inputs()
    expected = [spec.channels, spec.height, spec.width]
    if len(inputs) != 1 or inputs[0].name != spec.name:
        names = ", ".join(str(node.name) for node in inputs)
        raise BrokenModel(f"takes inputs ({names}); the manifest says one input, {spec.name}")
    node = inputs[0]
    shape = list(node.shape)
    if node.type != FLOAT_TENSOR or len(shape) != 4 or shape[1:] != expected:
        wanted = _shape(["N", *expected])
        raise BrokenModel(f"takes {node.type} {_shape(shape)}; the manifest says float32 {wanted}")
    missing = sorted(set(outputs) - {str(output.name) for output in session.get_outputs()})
    if missing:
        raise BrokenModel(f"lacks the outputs {', '.join(missing)} that the manifest names")
    batch = shape[0]
    if isinstance(batch, int) and batch > 1:
        raise BrokenModel(f"has a fixed batch of {batch}; the build exports a dynamic one")
    return 1 if batch == 1 else None


def _shape(dims: Sequence[object]) -> str:
    return "[" + ", ".join("N" if dim is None else str(dim) for dim in dims) + "]"


def release_freed_memory() -> None:
    """Hand freed heap pages back to the system (glibc only; elsewhere a no-op).

    glibc keeps freed memory in its arenas for reuse: after a VGG loads, some 150 MB of the
    load's transient copy stay in the process, and after a session is dropped, part of its
    weights, until ``malloc_trim`` returns them. It takes milliseconds; it runs once per load.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


class SessionCache:
    def __init__(self, budget_bytes: int) -> None:
        self._budget = budget_bytes
        self._entries: OrderedDict[SessionKey, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[SessionKey, threading.Lock] = {}

    def get(self, key: SessionKey, size: int, load: Callable[[], Loaded]) -> Loaded:
        """The session for ``key`` (``size`` bytes on disk); concurrent first requests for one
        key call ``load`` once, after making room for it."""
        with self._lock:
            if (hit := self._hit(key)) is not None:
                return hit
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if (hit := self._hit(key)) is not None:
                    return hit
                # Room first, for the load's peak, so that the process stays within the budget.
                self._drop_older_builds(key)
                self._evict_until(self._budget - LOAD_PEAK * size)
            release_freed_memory()  # what dropped sessions held, before the load needs it
            try:
                loaded = load()
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            with self._lock:
                self._entries[key] = loaded
                self._evict_until(self._budget, keep=1)
            release_freed_memory()  # the load's transient copy of the file
        return loaded

    def loaded(self) -> dict[SessionKey, Loaded]:
        with self._lock:
            return dict(self._entries)

    def discard(self, key: SessionKey, loaded: Loaded) -> None:
        """Forget ``loaded`` (a session that hung): the next request for ``key`` loads afresh."""
        with self._lock:
            if self._entries.get(key) is loaded:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _hit(self, key: SessionKey) -> Loaded | None:
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
        return hit

    def _drop_older_builds(self, key: SessionKey) -> None:
        for stale in [k for k in self._entries if k.path == key.path]:
            del self._entries[stale]

    def _evict_until(self, limit: int, keep: int = 0) -> None:
        """Drop the least recently used sessions until at most ``limit`` bytes are held, keeping
        the ``keep`` most recent ones whatever their size."""
        while len(self._entries) > keep and self._used() > limit:
            self._entries.popitem(last=False)

    def _used(self) -> int:
        return sum(entry.bytes for entry in self._entries.values())
