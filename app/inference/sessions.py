"""ONNX Runtime sessions, loaded on first use and kept within a memory budget.

A session's memory is counted as its ONNX file's size (the weights dominate: a VGG is about
0.5 GB). When the total passes the budget the least recently used sessions are dropped; the one
just loaded always stays, even alone above the budget. Requests that still hold a dropped session
finish with it; the memory goes when the last of them does.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort


@dataclass(frozen=True)
class SessionKey:
    path: Path
    sha256: str  # from the manifest: a rebuilt file is a new key


@dataclass(frozen=True)
class Loaded:
    session: ort.InferenceSession
    provider: str  # session.get_providers()[0]
    bytes: int


class SessionCache:
    def __init__(self, budget_bytes: int, load: Callable[[SessionKey], Loaded]) -> None:
        self._budget = budget_bytes
        self._load = load
        self._entries: OrderedDict[SessionKey, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[SessionKey, threading.Lock] = {}

    def get(self, key: SessionKey) -> Loaded:
        """The session for ``key``; concurrent first requests for one key load it once."""
        with self._lock:
            if (hit := self._hit(key)) is not None:
                return hit
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if (hit := self._hit(key)) is not None:
                    return hit
            loaded = self._load(key)
            with self._lock:
                self._insert(key, loaded)
                self._loading.pop(key, None)
        return loaded

    def loaded(self) -> dict[SessionKey, Loaded]:
        with self._lock:
            return dict(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _hit(self, key: SessionKey) -> Loaded | None:
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
        return hit

    def _insert(self, key: SessionKey, loaded: Loaded) -> None:
        for stale in [k for k in self._entries if k.path == key.path]:
            del self._entries[stale]  # an older build of the same file
        self._entries[key] = loaded
        while len(self._entries) > 1 and self._used() > self._budget:
            self._entries.popitem(last=False)

    def _used(self) -> int:
        return sum(entry.bytes for entry in self._entries.values())
