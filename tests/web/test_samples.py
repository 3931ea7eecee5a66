"""The sample photographs: small JPEGs under static/samples/, each with its source and licence in
NOTES.md and on every page with an upload panel, served under hashed URLs."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.settings import get_settings
from app.web.samples import Sample, load_samples
from scripts.make_samples import MEMBERS, SIDE, THUMB_SIDE

STATIC = get_settings().static_dir
SAMPLES = load_samples(STATIC)
NOTES = (STATIC / "samples" / "NOTES.md").read_text(encoding="utf-8")


def test_the_four_photographs_the_issue_names() -> None:
    assert [sample.id for sample in SAMPLES] == ["chelsea", "coffee", "rocket", "astronaut"]
    assert set(MEMBERS) == {sample.id for sample in SAMPLES}


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.id for sample in SAMPLES])
def test_each_sample_is_a_small_jpeg_with_a_square_thumbnail(sample: Sample) -> None:
    photo = Image.open(io.BytesIO((STATIC / sample.file).read_bytes()))
    assert (photo.format, photo.mode) == ("JPEG", "RGB")
    assert max(photo.size) <= SIDE
    assert min(photo.size) >= 224  # the nets' crop is never upscaled from less
    assert (STATIC / sample.file).stat().st_size < 100_000
    with Image.open(STATIC / sample.thumb) as thumb:
        assert (thumb.format, thumb.size) == ("JPEG", (THUMB_SIDE, THUMB_SIDE))


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.id for sample in SAMPLES])
def test_the_notes_name_each_source_and_licence(sample: Sample) -> None:
    row = next(line for line in NOTES.splitlines() if line.startswith(f"| `{sample.id}.jpg`"))
    assert sample.author in row
    assert sample.source_url in row
    assert sample.licence in row
    assert sample.licence_url in row
    assert MEMBERS[sample.id] in row  # the file in scikit-image's wheel
    if sample.licence.startswith("CC0"):
        assert sample.licence_url == "https://creativecommons.org/publicdomain/zero/1.0/"
    else:
        assert sample.licence == "public domain"
        assert "public domain" in row.split("|")[-2]


@pytest.mark.parametrize("path", ["/nets/alexnet-lecture", "/compare"])
def test_pages_with_an_upload_panel_offer_the_samples_and_credit_them(
    client: TestClient, path: str
) -> None:
    page = client.get(path).text
    assets = client.app.state.assets  # type: ignore[attr-defined]
    for sample in SAMPLES:
        assert f'data-sample-url="{assets.url(sample.file)}"' in page
        assert f'src="{assets.url(sample.thumb)}"' in page
        assert f'href="{sample.source_url}"' in page
        assert f'href="{sample.licence_url}"' in page
    assert f'href="{assets.url("samples/NOTES.md")}"' in page


def test_the_sample_files_are_served(client: TestClient) -> None:
    assets = client.app.state.assets  # type: ignore[attr-defined]
    for sample in SAMPLES:
        answer = client.get(assets.url(sample.file))
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/jpeg"
        assert answer.content == (STATIC / sample.file).read_bytes()
