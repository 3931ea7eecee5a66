"""Static files: content-hashed URLs, long immutable caching, gzip, and rewritten imports."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.web.assets import COMPILE_HINT, URL_PREFIX, Assets

from .support import error_of

STATIC = Path(__file__).resolve().parents[2] / "static"


def _asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', html)


def test_pages_link_hashed_assets(client: TestClient) -> None:
    urls = _asset_urls(client.get("/nets/alexnet-lecture").text)
    assert any(url.endswith(".js") for url in urls)
    assert all(re.search(r"\.[0-9a-f]{12}\.\w+$", url) for url in urls)


def test_a_hashed_asset_is_immutable_and_gzipped(client: TestClient) -> None:
    url = next(u for u in _asset_urls(client.get("/").text) if "plotly-basic" in u)
    response = client.get(url, headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert int(response.headers["content-length"]) < len(response.content) / 2


def test_an_asset_is_sent_plain_to_a_client_without_gzip(client: TestClient) -> None:
    url = next(u for u in _asset_urls(client.get("/").text) if u.endswith(".css"))
    response = client.get(url, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in response.headers
    assert b"--ink" in response.content


def test_a_matching_etag_is_304(client: TestClient) -> None:
    url = _asset_urls(client.get("/").text)[0]
    etag = client.get(url).headers["etag"]
    assert client.get(url, headers={"if-none-match": etag}).status_code == 304


@pytest.mark.parametrize("path", ["/static/css/app.css", "/static/css/app.000000000000.css"])
def test_only_current_hashed_urls_exist(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_module_imports_point_at_hashed_urls_that_exist(client: TestClient) -> None:
    url = next(u for u in _asset_urls(client.get("/nets/vgg16").text) if "pages/net" in u)
    seen, queue = set(), [url]
    while queue:
        current = queue.pop()
        seen.add(current)
        response = client.get(current)
        assert response.status_code == 200, current
        imports = re.findall(r"""from\s*["']([^"']+)["']""", response.text)
        assert all(re.match(r"/static/.+\.[0-9a-f]{12}\.js$", target) for target in imports)
        queue += [target for target in imports if target not in seen]
    assert len(seen) > 3  # the page module, its helpers and config.js


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_a_changed_dependency_changes_its_importers_url(tmp_path: Path) -> None:
    main = "import { a } from './config.js';\n"
    _write(tmp_path, {"js/config.js": "export const a = 1;\n", "js/main.js": main})
    before = Assets(tmp_path).url("js/main.js")
    _write(tmp_path, {"js/config.js": "export const a = 2;\n"})
    after = Assets(tmp_path)
    assert after.url("js/main.js") != before
    rewritten = after.find(after.url("js/main.js").removeprefix(URL_PREFIX))
    assert rewritten is not None
    assert f"from '{after.url('js/config.js')}'".encode() in rewritten.body


def test_an_import_cycle_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, {"a.js": "import './b.js';\n", "b.js": "import './a.js';\n"})
    with pytest.raises(ValueError, match="import cycle"):
        Assets(tmp_path)


def test_an_import_of_a_missing_file_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, {"a.js": "import { x } from './missing.js';\n"})
    with pytest.raises(ValueError, match=r"missing\.js"):
        Assets(tmp_path)


def test_the_gzipped_body_is_exactly_the_file(client: TestClient) -> None:
    url = next(u for u in _asset_urls(client.get("/").text) if u.endswith(".css"))
    plain = client.get(url, headers={"accept-encoding": "identity"}).content
    with client.stream("GET", url, headers={"accept-encoding": "gzip"}) as response:
        compressed = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(compressed) == plain


def test_plotly_is_served_with_v8s_compile_hint_and_otherwise_as_vendored(
    client: TestClient,
) -> None:
    url = next(u for u in _asset_urls(client.get("/").text) if "plotly-basic" in u)
    served = client.get(url).content
    vendored = (STATIC / "vendor" / "plotly" / "plotly-basic.min.js").read_bytes()
    assert served == COMPILE_HINT + vendored


def test_our_own_modules_get_no_compile_hint(client: TestClient) -> None:
    urls = [u for u in _asset_urls(client.get("/nets/vgg16").text) if "/js/" in u]
    assert urls
    assert not any(client.get(url).content.startswith(COMPILE_HINT) for url in urls)
