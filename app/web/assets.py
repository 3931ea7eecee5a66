"""Static files with content-hash URLs: ``js/net.js`` is served as ``/static/js/net.<hash>.js``.

Everything under static/ is read once at start-up, hashed, and gzipped at level 9, so a request
is a dictionary lookup. Hashed URLs never change content, so browsers may keep them for a year
(``immutable``). Our own ES modules import each other by relative path; those specifiers are
rewritten to the hashed URLs, and a module's hash covers its imports', so changing config.js
gives every module that imports it a new URL too.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fastapi import Request
from fastapi.responses import Response

from app.web.caching import etag, matches
from app.web.errors import ApiError
from app.web.responses import accepts_gzip

URL_PREFIX = "/static/"
HASH_LENGTH = 12
GZIP_MIN_BYTES = 512
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
}
# `import ... from "./x.js"`, `import "./x.js"` and `import("./x.js")` with a relative path.
IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*\(?\s*)(["'])(\.{1,2}/[^"']+)\2""")
VENDOR_DIR = "vendor/"
# V8's explicit compile hint: a script whose first line is this magic comment has every function
# compiled eagerly, on a background thread while it downloads, instead of lazily on first call.
# Plotly's bundle calls most of its functions while it loads and draws the first chart; with the
# hint, that chart came about 70 ms sooner in headless Chromium (docs/web.md). Added when served,
# so the vendored file stays byte for byte upstream's.
COMPILE_HINT = b"//# allFunctionsCalledOnLoad\n"
EAGERLY_COMPILED = frozenset({"vendor/plotly/plotly-basic.min.js"})


@dataclass(frozen=True)
class Asset:
    path: str
    url: str
    body: bytes
    gzipped: bytes | None
    media_type: str
    digest: str  # of the body, as its URL names it


def _media_type(path: str) -> str:
    suffix = PurePosixPath(path).suffix
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def _hashed_name(path: str, digest: str) -> str:
    pure = PurePosixPath(path)
    return str(pure.with_name(f"{pure.stem}.{digest}{pure.suffix}"))


def _resolve(importer: str, specifier: str) -> str:
    parts: list[str] = list(PurePosixPath(importer).parent.parts)
    for part in PurePosixPath(specifier).parts:
        if part == "..":
            if not parts:
                raise ValueError(f"{importer}: import {specifier!r} leaves static/")
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


class Assets:
    """Every file under ``root``, by logical path (``js/net.js``) and by hashed URL path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._sources = {
            file.relative_to(root).as_posix(): file.read_bytes()
            for file in sorted(root.rglob("*"))
            if file.is_file()
        }
        self._by_path: dict[str, Asset] = {}
        for path in self._sources:
            self._build(path, ())
        self._by_url = {asset.url.removeprefix(URL_PREFIX): asset for asset in self}

    def __iter__(self) -> Iterator[Asset]:
        return iter(self._by_path.values())

    def __len__(self) -> int:
        return len(self._by_path)

    def url(self, path: str) -> str:
        """The hashed URL of a logical path; a typo in a template fails loudly here."""
        return self._by_path[path].url

    def find(self, url_path: str) -> Asset | None:
        return self._by_url.get(url_path)

    def _build(self, path: str, chain: tuple[str, ...]) -> Asset:
        if path in self._by_path:
            return self._by_path[path]
        if path in chain:
            raise ValueError(f"import cycle: {' -> '.join((*chain, path))}")
        if path not in self._sources:
            raise ValueError(f"{chain[-1]} imports {path}, which is not in static/")
        body = self._sources[path]
        if path.endswith(".js") and not path.startswith(VENDOR_DIR):
            body = self._rewrite_imports(path, body, (*chain, path))
        if path in EAGERLY_COMPILED:
            body = COMPILE_HINT + body
        digest = hashlib.sha256(body).hexdigest()[:HASH_LENGTH]
        media_type = _media_type(path)
        compress = media_type.startswith(COMPRESSIBLE) and len(body) >= GZIP_MIN_BYTES
        asset = Asset(
            path=path,
            url=URL_PREFIX + _hashed_name(path, digest),
            body=body,
            gzipped=gzip.compress(body, compresslevel=9, mtime=0) if compress else None,
            media_type=media_type,
            digest=digest,
        )
        self._by_path[path] = asset
        return asset

    def _rewrite_imports(self, path: str, body: bytes, chain: tuple[str, ...]) -> bytes:
        def hashed(match: re.Match[str]) -> str:
            target = self._build(_resolve(path, match.group(3)), chain)
            return f"{match.group(1)}{match.group(2)}{target.url}{match.group(2)}"

        return IMPORT.sub(hashed, body.decode("utf-8")).encode("utf-8")


def asset_response(asset: Asset, request: Request, max_age: int) -> Response:
    gzipped = asset.gzipped is not None and accepts_gzip(request)
    tag = etag(asset.digest, gzipped=gzipped)
    headers = {
        "Cache-Control": f"public, max-age={max_age}, immutable",
        "ETag": tag,
        "Vary": "Accept-Encoding",
    }
    if matches(request.headers, tag):
        return Response(status_code=304, headers=headers)
    if asset.gzipped is not None and gzipped:
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def serve_static(path: str, request: Request) -> Response:
    """GET /static/{path}: only hashed URLs exist, so a stale page never gets a newer file."""
    assets: Assets = request.app.state.assets
    asset = assets.find(path)
    if asset is None:
        raise ApiError(404, "not_found", "no static file at this path")  # the path is not echoed
    return asset_response(asset, request, request.app.state.settings.static_max_age)
