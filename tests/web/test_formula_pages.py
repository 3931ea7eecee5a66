"""The pages show each layer's formulas as the table has them, and each is true as written."""

from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi.testclient import TestClient

from app.web.catalog import lecture_entries, lecture_skips
from tests.core.exact_formulas import evaluate
from tests.goldens import golden_table


@pytest.mark.parametrize("net_id", ["zfnet-2013", "alexnet-torchvision", "alexnet-lecture"])
def test_a_net_page_shows_every_formula_true_as_written(client: TestClient, net_id: str) -> None:
    html = client.get(f"/nets/{net_id}").text
    shown = [unescape(code) for code in re.findall(r"<dd><code>(.*?)</code></dd>", html)]
    expected = [
        text
        for row in golden_table(net_id)["layers"]
        for text in (row["formula"]["output"], row["formula"]["params"], row["formula"]["macs"])
        if text is not None
    ]
    assert shown == expected
    for text in shown:
        evaluate(text)


def test_the_lecture_page_shows_every_computation_true_as_written(client: TestClient) -> None:
    html = client.get("/lecture").text
    shown = [unescape(code) for code in re.findall(r"<code>(.*?)</code>", html)]
    expected = [e.computation for e in lecture_entries() if e.computation]
    expected += [s.computation for s in lecture_skips() if s.computation]
    assert shown == expected
    for text in shown:
        evaluate(text)
