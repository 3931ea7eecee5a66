"""Pretrained weights: torchvision's published checkpoints, or any file in the same format.

A checkpoint is a plain state_dict saved by torch.save. As in torch.hub, a filename ending in
``-<hex>.<ext>`` carries the first hex digits of the file's sha256 and is checked against them.
Downloads go to a temporary file in the cache folder and are renamed into place only once their
hash checks, so the cache never holds a half-written or unverified checkpoint.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import torch
from torch import nn
from tqdm import tqdm

HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
CHUNK = 1024 * 1024
PARTIAL_SUFFIX = ".partial"


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


@dataclass(frozen=True)
class Provenance:
    """Where a net's weights came from; written into its manifest."""

    kind: Literal["pretrained", "untrained"]
    source: str | None = None  # URL or path of the checkpoint
    sha256: str | None = None  # of the checkpoint file
    seed: int | None = None  # of the random weights
    note: str | None = None  # e.g. why pretrained weights fell back to untrained

    def describe(self) -> str:
        if self.kind == "pretrained":
            return f"pretrained from {self.source} (sha256 {self.sha256})"
        note = f"; {self.note}" if self.note else ""
        return f"untrained: seeded random weights, seed {self.seed}{note}"


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
    return target, _download(url, target, timeout)


def _download(url: str, target: Path, timeout: float) -> str:
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=PARTIAL_SUFFIX, dir=target.parent
    )
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            sha256 = _stream(url, out, timeout)
        check_hash(target.name, sha256)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return sha256


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
