"""The live-inference markup on the net and compare pages: what the page script wires up."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from app.inference.images import ACCEPTED
from app.settings import get_settings
from app.web.catalog import weights_now

# What the service decodes ("JPEG, PNG, GIF, BMP or WebP") as the MIME types a picker offers.
IMAGE_TYPES = {f"image/{name.lower()}" for name in re.findall(r"\w+", ACCEPTED) if name != "or"}


class Elements(HTMLParser):
    """Every element's attributes, in document order, by tag."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def where(self, tag: str | None = None, **wanted: str) -> list[dict[str, str | None]]:
        """Elements with these attribute values: data_id="x" is data-id, for_="x" is for."""
        attributes = {key.rstrip("_").replace("_", "-"): value for key, value in wanted.items()}
        return [
            attrs
            for name, attrs in self.found
            if tag in (None, name) and all(attrs.get(k) == v for k, v in attributes.items())
        ]

    def having(self, attribute: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.found if attribute in attrs]

    def position(self, **wanted: str) -> int:
        for index, (_, attrs) in enumerate(self.found):
            if all(attrs.get(key) == value for key, value in wanted.items()):
                return index
        raise AssertionError(f"no element with {wanted}")


def _elements(client: TestClient, path: str) -> Elements:
    response = client.get(path)
    assert response.status_code == 200
    parser = Elements()
    parser.feed(response.text)
    return parser


def test_the_net_page_has_a_real_labelled_file_input(client: TestClient) -> None:
    page = _elements(client, "/nets/alexnet-lecture")
    [picker] = page.where("input", type="file")
    assert len(IMAGE_TYPES) >= 5
    assert set((picker["accept"] or "").split(",")) == IMAGE_TYPES  # what the service decodes
    assert "disabled" not in picker  # the page disables it only when no net can predict
    [label] = page.where("label", for_=picker["id"] or "")
    assert "data-dropzone" in label


def test_the_net_page_asks_its_own_net(client: TestClient) -> None:
    page = _elements(client, "/nets/vgg16")
    [net] = page.where("div", data_id="vgg16")
    assert net["data-info-url"] == net["data-predict-url"] == "/api/predict/vgg16"
    assert net["data-features-url"] == "/api/predict/vgg16/features"
    assert page.where(id="net-top5")


def test_the_feature_strip_sits_under_the_volume_chart(client: TestClient) -> None:
    page = _elements(client, "/nets/alexnet-lecture")
    volume = page.position(id="net-volume")
    strip = page.position(id="net-features")
    assert volume < strip < page.position(id="net-cost")


@pytest.mark.parametrize(
    ("net_id", "banner_shown"), [("alexnet-lecture", True), ("alexnet-torchvision", False)]
)
def test_nets_without_published_weights_carry_the_untrained_banner(
    client: TestClient, net_id: str, banner_shown: bool
) -> None:
    """Not built yet (this client's repository is empty): a net that has no published weights
    will run untrained whatever happens; one that has may load them (tests/web/
    test_weights_served.py has the built states)."""
    served = weights_now(get_settings().models_dir, net_id)
    assert (served.state, served.untrained) == ("not_built", banner_shown)
    page = _elements(client, f"/nets/{net_id}")
    [banner] = page.having("data-untrained-banner")
    assert ("hidden" not in banner) is banner_shown


def test_the_compare_page_runs_both_nets_from_one_upload(client: TestClient) -> None:
    page = _elements(client, "/compare?a=alexnet-lecture&b=vgg11")
    assert len(page.where("input", type="file")) == 1
    [section] = page.where("section", id="predict")
    assert section["data-predict-many-url"] == "/api/predict"
    assert [net["data-id"] for net in page.having("data-net-result")] == [
        "alexnet-lecture",
        "vgg11",
    ]
    banners = page.having("data-untrained-banner")
    assert ["hidden" in banner for banner in banners] == [False, True]
    for prefix in ("a", "b"):
        assert page.position(id=f"{prefix}-volume") < page.position(id=f"{prefix}-features")
