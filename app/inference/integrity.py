"""Model files checked against the sha256 their manifest records, in the background.

A file damaged in place keeps its size, so the manifest's size check (``read_manifest``, on every
request) cannot see it; only its sha256 can, and hashing a VGG's 0.5 GB takes about a third of a
second of one core. So:

- the service hashes every built model file once, in the background, when it starts: one
  ``Verifier`` thread, one file at a time (smallest net first), read in 1 MiB chunks into one
  buffer (memory stays at one chunk; hashlib releases the GIL while it hashes), at the lowest
  CPU priority (nice 19) and in the idle I/O class, for that thread alone. It runs only while
  it has work;
- each digest is remembered by the file's identity on disk (``FileIdentity``: path, device,
  inode, size, mtime, ctime), in a ``DigestCache`` that keeps one version per path, so that status()
  never hashes a file again while it is unchanged, and a file renamed into place by a rebuild
  (or touched, or rewritten) is a new identity, hashed again when status() next sees it;
- the load-time check (``hash_file`` without a stop event) records its digest in the same
  cache; it still hashes the file itself, as the file may have changed since it was verified.

A digest is recorded only when the file's identity (by fstat of the open file) is the same
after the read as before it: a file written while it was read is hashed again. An edit in place
that keeps the size and puts the old mtime back still moves the ctime, which no system call can
set, so it is hashed again too.

``close()`` stops the thread within one chunk (the file is closed as it returns) and waits for
it, so nothing is read after the service has closed.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

CHUNK = 1024 * 1024
PREFIX = 12  # hex digits of a digest shown in a reason
CLOSE_TIMEOUT_S = 5.0  # how long close() waits for the thread (a read of one chunk, normally)
VERIFY_THREAD = "convatlas-verify"
LOWEST_NICE = 19


@dataclass(frozen=True)
class FileIdentity:
    """One version of a file on disk: a rebuild renames a new file (a new inode) into place;
    a write in place changes the mtime and the ctime. The mtime can be put back (utime), the
    ctime cannot: the kernel sets it to now on every write and every utime."""

    path: Path
    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int


def _identity(path: Path, stat: os.stat_result) -> FileIdentity:
    return FileIdentity(
        path, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns
    )


def file_identity(path: Path) -> FileIdentity | None:
    """The identity of the file at ``path`` now; None when there is none."""
    try:
        return _identity(path, path.stat())
    except OSError:
        return None


@dataclass(frozen=True)
class Digest:
    sha256: str
    identity: FileIdentity | None  # the version that was read; None when it changed meanwhile


@overload
def hash_file(path: Path) -> Digest: ...


@overload
def hash_file(path: Path, stop: threading.Event) -> Digest | None: ...


def hash_file(path: Path, stop: threading.Event | None = None) -> Digest | None:
    """The sha256 of the file at ``path``, read a chunk at a time into one buffer; None when
    ``stop`` is set before the end (the file is closed either way). OSError when unreadable."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    with path.open("rb", buffering=0) as file, memoryview(buffer) as view:
        before = _identity(path, os.fstat(file.fileno()))
        while count := file.readinto(buffer):
            if stop is not None and stop.is_set():
                return None
            digest.update(view[:count])
        after = _identity(path, os.fstat(file.fileno()))
    return Digest(digest.hexdigest(), before if after == before else None)


def mismatch_reason(path: str, expected: str, actual: str) -> str:
    """Why a file is refused: its sha256 is not its manifest's (a prefix of each)."""
    return (
        f"{path} does not match the sha256 in its manifest: "
        f"expected {expected[:PREFIX]}..., got {actual[:PREFIX]}..."
    )


class DigestCache:
    """The sha256 of files by identity, one version per path (the newest recorded): a rebuilt
    file's old digest is of no further use, so the cache holds one entry per model file."""

    def __init__(self) -> None:
        self._digests: dict[Path, tuple[FileIdentity, str]] = {}
        self._lock = threading.Lock()

    def get(self, identity: FileIdentity) -> str | None:
        with self._lock:
            entry = self._digests.get(identity.path)
        return entry[1] if entry is not None and entry[0] == identity else None

    def record(self, digest: Digest) -> None:
        """Remember ``digest`` unless its file changed while it was read."""
        if digest.identity is None:
            return
        with self._lock:
            self._digests[digest.identity.path] = (digest.identity, digest.sha256)


# A file's identity to sha256 is true in the whole process: the services of one process share
# what they have hashed (the server has one service; the tests make many).
SHARED_DIGESTS = DigestCache()

Hasher = Callable[[Path, threading.Event], Digest | None]
FileState = Literal["hashed", "verifying", "unchecked"]


@dataclass(frozen=True)
class FileCheck:
    state: FileState
    sha256: str | None = None  # when hashed
    detail: str | None = None  # when unchecked: why


class Verifier:
    """Hashes the files it is asked about in one background thread, one at a time, in the
    order asked, and records each digest in ``cache``.

    The thread starts when there is work (``start`` with a way to find the first files,
    ``check`` of a file not hashed yet) and ends when there is none left; ``close`` stops it
    for good. ``hasher`` reads a file (tests pass one that waits)."""

    def __init__(self, cache: DigestCache | None = None, hasher: Hasher = hash_file) -> None:
        self.cache = cache if cache is not None else SHARED_DIGESTS
        self._hasher = hasher
        self._lock = threading.Condition()
        self._pending: dict[Path, FileIdentity] = {}  # in the order asked
        self._current: FileIdentity | None = None
        self._failed: dict[Path, tuple[FileIdentity, str]] = {}  # unreadable: not retried
        self._discover: Callable[[], Iterable[FileIdentity]] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self, discover: Callable[[], Iterable[FileIdentity]]) -> None:
        """Hash the files ``discover`` finds (it runs in the thread, not in the caller)."""
        with self._lock:
            if self._stop.is_set():
                return
            self._discover = discover
            self._wake()

    def check(self, identity: FileIdentity) -> FileCheck:
        """What is known of this version of a file; one not hashed yet is asked for."""
        if (sha256 := self.cache.get(identity)) is not None:
            return FileCheck("hashed", sha256=sha256)
        with self._lock:
            failed = self._failed.get(identity.path)
            if failed is not None and failed[0] == identity:
                return FileCheck("unchecked", detail=failed[1])
            if self._stop.is_set():
                return FileCheck("unchecked", detail="the service has closed")
            if identity != self._current:
                self._pending[identity.path] = identity
                self._wake()
        return FileCheck("verifying")

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is left to hash (or the thread has stopped); False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._thread is None, timeout)

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop hashing (within one chunk) and wait for the thread, which closes its file."""
        self._stop.set()
        with self._lock:
            self._pending.clear()
            self._discover = None
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _wake(self) -> None:
        """Start the thread if there is work and none runs (the lock is held)."""
        if self._thread is None and (self._pending or self._discover is not None):
            self._thread = threading.Thread(target=self._run, name=VERIFY_THREAD, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            _lower_priority()
            while (identity := self._next()) is not None:
                self._hash(identity)
        finally:
            with self._lock:
                self._thread = None
                self._current = None
                self._lock.notify_all()
                if not self._stop.is_set():
                    self._wake()  # work that came in as the thread was ending

    def _next(self) -> FileIdentity | None:
        with self._lock:
            discover, self._discover = self._discover, None
        if discover is not None:
            found = list(discover())
            with self._lock:
                for identity in found:
                    self._pending.setdefault(identity.path, identity)
        with self._lock:
            self._current = None
            while self._pending and not self._stop.is_set():
                path = next(iter(self._pending))
                identity = self._pending.pop(path)
                if self.cache.get(identity) is None:  # a load may have hashed it meanwhile
                    self._current = identity
                    return identity
            return None

    def _hash(self, identity: FileIdentity) -> None:
        try:
            digest = self._hasher(identity.path, self._stop)
        except OSError as error:
            with self._lock:
                why = error.strerror or str(error)
                self._failed[identity.path] = (identity, f"cannot read {identity.path}: {why}")
            return
        if digest is not None:
            self.cache.record(digest)


def _lower_priority() -> None:
    """Nice 19 and the idle I/O class, for the calling thread alone: on Linux a thread's nice
    value and I/O priority are its own (a thread it starts inherits them; the verifier's thread
    starts only its successor). Idle I/O waits for a disk no one else is reading, where the
    I/O scheduler honours classes (bfq); elsewhere it changes nothing."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, thread, LOWEST_NICE)
    set_io_priority(thread, IOPRIO_CLASS_IDLE)


# ioprio_set(2) and ioprio_get(2), which the os module does not wrap.
IOPRIO_WHO_PROCESS = 1  # a thread id, for a thread
IOPRIO_CLASS_SHIFT = 13
IOPRIO_CLASS_IDLE = 3
IOPRIO_SYSCALLS = {"x86_64": (251, 252), "aarch64": (30, 31)}  # (ioprio_set, ioprio_get)


@functools.cache
def _ioprio_syscalls() -> tuple[ctypes.CDLL, int, int] | None:
    numbers = IOPRIO_SYSCALLS.get(platform.machine())
    # platform.machine() is the kernel's: a 32-bit interpreter on a 64-bit kernel has other
    # numbers (252 is exit_group on i386).
    is_64_bit = ctypes.sizeof(ctypes.c_void_p) == 8
    if numbers is None or not is_64_bit or not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True), *numbers


def set_io_priority(thread: int, io_class: int) -> bool:
    """Best effort: False where the platform or the kernel refuses."""
    calls = _ioprio_syscalls()
    if calls is None:
        return False
    libc, set_call, _ = calls
    return (
        int(libc.syscall(set_call, IOPRIO_WHO_PROCESS, thread, io_class << IOPRIO_CLASS_SHIFT)) == 0
    )


def io_priority_class(thread: int) -> int | None:
    calls = _ioprio_syscalls()
    if calls is None:
        return None
    libc, _, get_call = calls
    value = int(libc.syscall(get_call, IOPRIO_WHO_PROCESS, thread))
    return None if value < 0 else value >> IOPRIO_CLASS_SHIFT
