"""The analysis cache is bounded in bytes as well as entries (issue 14)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from app.settings import Settings
from app.web.app import create_app
from app.web.byte_cache import ByteBoundedCache
from app.web.catalog import ANALYSIS_CACHE


def test_oldest_entries_leave_until_the_bytes_fit() -> None:
    cache: ByteBoundedCache[str] = ByteBoundedCache(max_bytes=100, max_entries=10)
    cache.put("a", "A", 40)
    cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # a is now the most recent
    cache.put("c", "C", 40)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("A", None, "C")
    assert cache.bytes == 80


def test_an_entry_larger_than_the_whole_cache_is_not_kept() -> None:
    cache: ByteBoundedCache[str] = ByteBoundedCache(max_bytes=100, max_entries=10)
    cache.put("big", "B", 101)
    assert (len(cache), cache.bytes, cache.get("big")) == (0, 0, None)


def test_the_entry_bound_still_holds() -> None:
    cache: ByteBoundedCache[int] = ByteBoundedCache(max_bytes=10**6, max_entries=2)
    for n in range(3):
        cache.put(n, n, 1)
    assert (cache.get(0), cache.get(1), cache.get(2)) == (None, 1, 2)


def test_the_servers_analysis_cache_stays_within_its_setting() -> None:
    limit = 64 * 1024
    spec = {"name": "n", "input": {"height": 32, "width": 32, "channels": 3}, "layers": []}
    with TestClient(create_app(Settings(analyze_cache_bytes=limit))) as client:
        ANALYSIS_CACHE.clear()
        for channels in range(1, 60):
            layers = [{"kind": "conv", "out_channels": channels, "kernel": 3}] * 8
            body = json.dumps({**spec, "layers": layers})
            response = client.post(
                "/api/analyze", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 200
            assert ANALYSIS_CACHE.bytes <= limit
        assert 0 < len(ANALYSIS_CACHE) < 59
    ANALYSIS_CACHE.resize(Settings().analyze_cache_bytes)
