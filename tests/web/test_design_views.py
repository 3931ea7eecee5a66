"""VGG's stacked 3x3 convs and conv1's sampling grid over the API and on the pages: the exact
figures, on the pages that should have them and on no other."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from .support import error_of


def squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_the_stacks_api_gives_the_papers_figures(client: TestClient) -> None:
    response = client.get("/api/architectures/vgg16/stacks")
    assert response.status_code == 200
    stage3 = response.json()[2]
    assert stage3["stack_at_c"]["weights"] == 1_769_472
    assert stage3["single_at_c"]["weights"] == 3_211_264
    assert stage3["stack"]["receptive_field"] == stage3["single"]["receptive_field"] == 7
    assert (stage3["stack"]["macs"], stage3["single"]["macs"]) == (4_624_220_160, 5_035_261_952)
    assert client.get("/api/architectures/alexnet-lecture/stacks").json()[0]["layers"] == [
        "conv3",
        "conv4",
        "conv5",
    ]
    missing = client.get("/api/architectures/nope/stacks")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "unknown_net"


def test_a_vgg_page_and_a_comparison_with_vgg_make_the_case(client: TestClient) -> None:
    page = squeeze(client.get("/nets/vgg16").text)
    assert 'id="stacks-stage-3"' in page
    assert '<code class="wrap">3*3*256*256 + 3*3*256*256 + 3*3*256*256 = 1,769,472</code>' in page
    assert '<code class="wrap">7*7*256*256 = 3,211,264</code>' in page
    compared = client.get("/compare?a=alexnet-lecture&b=vgg16").text
    assert 'id="stacks-b"' in compared
    assert 'id="stacks-a"' not in compared
    assert 'id="stacks"' not in client.get("/nets/alexnet-lecture").text


def test_the_first_layer_api_counts_what_the_lectures_zfnet_misses(client: TestClient) -> None:
    body = client.get("/api/architectures/zfnet-lecture/first-layer").json()
    assert (body["coverage"]["kernel"], body["coverage"]["stride"]) == (7, 4)
    assert body["coverage"]["units"] == 56
    assert body["coverage"]["uncovered_columns"] == []
    assert body["stated_units"] == 55
    assert body["stated"]["uncovered_columns"] == [223, 224, 225, 226]
    assert body["stated"]["uncovered_pixels"] == 227 * 227 - 223 * 223 == 1_800
    alexnet = client.get("/api/architectures/alexnet-lecture/first-layer").json()["coverage"]
    assert (alexnet["overlap"], alexnet["histogram"]) == (7, {"1": 8, "2": 60, "3": 159})
    zfnet = client.get("/api/architectures/zfnet-2013/first-layer").json()["coverage"]
    assert zfnet["starts"][:3] == [-1, 1, 3]  # 2 px apart, the first in the padding


def test_an_alexnet_or_zfnet_page_draws_the_first_layers_and_says_untrained(
    client: TestClient,
) -> None:
    page = squeeze(client.get("/nets/zfnet-lecture").text)
    assert (
        "Never seen with 55\u00d755 units: 4 columns (223, 224, 225, 226) and as many rows," in page
    )
    assert "1,800 of the 51,529 pixels" in page
    for net in ("zfnet-lecture", "alexnet-lecture", "zfnet-2013"):
        assert f'id="zoom-{net}"' in page
    # The web tests' repository is empty: no model, so no filters, and the page says why.
    assert "This net's model is not built yet, so it has no conv1 filters to show." in page
    assert "No pretrained checkpoint exists for it" in page
    assert 'id="filters"' not in page
    assert 'id="first-layer"' not in client.get("/nets/vgg16").text
