"""A first visit to a net page stays under 700 KB compressed, everything it loads included."""

from __future__ import annotations

import gzip
import re

import pytest
from fastapi.testclient import TestClient

BUDGET_BYTES = 700 * 1024
GZIP = {"accept-encoding": "gzip"}


def _wire_size(client: TestClient, url: str) -> tuple[int, str]:
    """Bytes on the wire with gzip, and the decoded text (to follow its imports)."""
    with client.stream("GET", url, headers=GZIP) as response:
        raw = b"".join(response.iter_raw())
        assert response.status_code == 200, url
        encoded = response.headers.get("content-encoding") == "gzip"
    text = (gzip.decompress(raw) if encoded else raw).decode("utf-8", errors="replace")
    return len(raw), text


def _first_visit(client: TestClient, page: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    queue = [page]
    while queue:
        url = queue.pop()
        if url in sizes:
            continue
        sizes[url], text = _wire_size(client, url)
        queue += re.findall(r'\s(?:src|href)="(/static/[^"]+)"', text)
        queue += re.findall(r"""from\s*["'](/static/[^"']+)["']""", text)
        queue += re.findall(r'data-(?:table-url|src)="(/api/[^"]+)"', text)
    return sizes


@pytest.mark.parametrize("net_id", ["alexnet-lecture", "vgg19-bn"])
def test_a_net_page_first_visit_is_under_budget(client: TestClient, net_id: str) -> None:
    sizes = _first_visit(client, f"/nets/{net_id}")
    assert any("plotly-basic" in url for url in sizes)
    assert not any("gl3d" in url for url in sizes if url.endswith(".js"))
    assert sum(sizes.values()) <= BUDGET_BYTES, sorted(sizes.items(), key=lambda kv: -kv[1])
