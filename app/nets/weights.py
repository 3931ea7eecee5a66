"""Pretrained weights: torchvision's published checkpoints, or any file in the same format.

A checkpoint is a plain state_dict saved by torch.save. As in torch.hub, a filename ending in
``-<hex>.<ext>`` carries the first hex digits of the file's sha256 and is checked against them.
Downloads go to a temporary file in the cache folder and are renamed into place only once their
hash checks, so the cache never holds a half-written or unverified checkpoint.

The cache is shared (by every repository, and by torch hub) and has no lock of its own. So a
download holds an exclusive flock on its temporary file while it writes it, and before each
download the temporary files of ours that nobody holds, left by a download killed outright
(SIGKILL, power loss), are removed. Without fcntl (not POSIX) nothing is locked or removed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO

import torch
from torch import nn
from tqdm import tqdm

try:
    import fcntl
except ImportError:  # not POSIX: no locks, so a leftover cannot be told from a live download
    fcntl = None  # type: ignore[assignment]

HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
CHUNK = 1024 * 1024
PARTIAL_SUFFIX = ".partial"
# _new_partial names a temporary file "." + the checkpoint's name + "." + mkstemp's 8 random
# characters + PARTIAL_SUFFIX, whatever the checkpoint's extension. Only such names are ever
# swept: not torch hub's own partial files (no leading dot, a 32-digit uuid; it takes no lock),
# nor anything else in the shared cache.
OUR_PARTIAL = re.compile(rf"\..+\.[a-z0-9_]{{8}}{re.escape(PARTIAL_SUFFIX)}")


class WeightsError(Exception):
    """A checkpoint that cannot be used: wrong hash, wrong keys or shapes, not a state_dict."""


class DownloadFailed(WeightsError):
    """The network did not deliver ``url``: ``offline`` when no server answered at all.

    The ``reason`` is kept apart from the URL so that a run which stops downloading after one
    offline failure can tell each later net why, naming that net's own URL.
    """

    def __init__(self, url: str, reason: str, *, offline: bool = False) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.offline = offline


def hash_prefix(name: str) -> str | None:
    """The sha256 prefix a checkpoint's filename carries, e.g. vgg16-397923af.pth -> 397923af."""
    found = HASH_IN_NAME.search(name)
    return found.group(1) if found else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_hash(name: str, sha256: str) -> None:
    prefix = hash_prefix(name)
    if prefix is not None and not sha256.startswith(prefix):
        raise WeightsError(
            f"{name}: sha256 is {sha256[: len(prefix)]}..., but the filename says {prefix}"
        )


def is_url(source: str) -> bool:
    return urllib.parse.urlsplit(source).scheme in {"http", "https", "file"}


def url_filename(url: str) -> str:
    return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name


def default_cache_dir() -> Path:
    """torch hub's checkpoint folder, where torchvision keeps the very same files."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def fetch(url: str, cache_dir: Path, timeout: float) -> tuple[Path, str]:
    """The checkpoint at ``url``, from the cache or downloaded into it: (path, sha256)."""
    name = url_filename(url)
    if not name:
        raise DownloadFailed(url, "the URL names no file")
    target = cache_dir / name
    if target.is_file():
        sha256 = sha256_of(target)
        check_hash(name, sha256)  # a cached file from elsewhere is checked like a download
        return target, sha256
    cache_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(cache_dir)
    return target, _download(url, target, timeout)


def remove_stale_partials(cache_dir: Path) -> None:
    """Remove the temporary files of downloads that were killed outright, never to clean up.

    A download holds a lock on its temporary file until the file is renamed into place or
    removed, so one whose lock can be had is being written by nobody.
    """
    if fcntl is None:
        return
    with contextlib.suppress(OSError):  # a leftover that stays is no reason not to download
        for name in os.listdir(cache_dir):
            if OUR_PARTIAL.fullmatch(name):
                _remove_if_unlocked(cache_dir / name)


def _remove_if_unlocked(path: Path) -> None:
    try:  # NOFOLLOW, NONBLOCK: a symlink or a FIFO named like ours is not ours, and must not hang
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return  # gone already: renamed into place, or removed by its download or another sweep
    try:
        if stat.S_ISREG(os.fstat(handle).st_mode):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Nobody can start writing it now either: every download makes a new random name.
            # Still, only the file locked here is removed, should the name point elsewhere now.
            if os.path.samestat(os.fstat(handle), os.stat(path, follow_symlinks=False)):
                path.unlink()
    except OSError:  # BlockingIOError: a download holds it. Else: best effort, leave it.
        pass
    finally:
        os.close(handle)


def _download(url: str, target: Path, timeout: float) -> str:
    handle, temp = _new_partial(target)
    try:
        # Renamed while still open, so still locked: a sweep never sees it finished but unlocked.
        with os.fdopen(handle, "wb") as out:
            sha256 = _stream(url, out, timeout)
            out.flush()  # a full disk must fail here, not once the file is in place
            check_hash(target.name, sha256)
            os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return sha256


def _new_partial(target: Path) -> tuple[int, Path]:
    """A new temporary file beside ``target``, open and locked: no sweep takes it for stale."""
    for _ in range(tempfile.TMP_MAX):
        handle, name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=PARTIAL_SUFFIX, dir=target.parent
        )
        try:
            kept = _lock(handle, Path(name))
        except BaseException:
            os.close(handle)
            Path(name).unlink(missing_ok=True)
            raise
        if kept:
            return handle, Path(name)
        os.close(handle)  # a sweep took it in the instant between creating and locking it
    raise FileExistsError(errno.EEXIST, "no usable temporary file name found")


def _lock(handle: int, path: Path) -> bool:
    """Lock the file just created at ``path``; False when a sweep removed it before we could."""
    if fcntl is None:
        return True
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        return os.path.samestat(os.fstat(handle), os.stat(path))
    except FileNotFoundError:
        return False


def _stream(url: str, out: IO[bytes], timeout: float) -> str:
    """Copy ``url`` into ``out`` with a progress bar; the sha256 of what was received."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=url_filename(url)) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            if total is not None and bar.n != total:
                raise DownloadFailed(url, f"the download stopped at {bar.n} of {total} bytes")
    except urllib.error.HTTPError as error:
        error.close()  # it holds the connection open otherwise
        raise DownloadFailed(url, f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise DownloadFailed(url, str(error.reason), offline=True) from None
    except (TimeoutError, ConnectionError) as error:
        raise DownloadFailed(url, str(error), offline=True) from None
    return digest.hexdigest()


def local_checkpoint(path: Path) -> tuple[Path, str]:
    """A checkpoint on disk: (path, sha256), its filename's hash prefix checked if it has one."""
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    sha256 = sha256_of(path)
    check_hash(path.name, sha256)
    return path, sha256


def load_into(net: nn.Module, path: Path) -> None:
    """Load a torchvision-format state_dict into ``net``: weights only, every key, every shape."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a bad file
        raise WeightsError(
            f"{path.name}: not a loadable checkpoint: {_first_line(error)}"
        ) from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path.name}: holds a {type(state).__name__}, not a state_dict")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise WeightsError(f"{path.name} does not fit this net: {_mismatch(error)}") from None


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _mismatch(error: RuntimeError) -> str:
    # torch's message starts with a line naming the module; the details follow, one per line.
    lines = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
    return " ".join(lines) or _first_line(error)
