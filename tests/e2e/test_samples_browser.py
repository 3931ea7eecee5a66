"""The sample photographs under the upload panel: a click runs the same path as an upload, so the
API gets the file's own bytes and gives the same answer as uploading that file."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, Response, expect

from app.web.samples import load_samples
from scripts.liveserver import ROOT

from .conftest import DESKTOP, PHONE, OpenAt, Problems, Shoot

pytestmark = pytest.mark.browser

STATIC = ROOT / "static"
SAMPLES = load_samples(STATIC)


def _predict_answer(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith(
        "/api/predict/alexnet-lecture"
    )


def _without_timings(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "timings_ms"}


def _ready(tab: Page) -> None:
    tab.goto("/nets/alexnet-lecture")
    expect(tab.locator("#predict [data-state-chip]")).to_contain_text("ready")


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.id for sample in SAMPLES])
def test_a_sample_gives_the_same_answer_as_uploading_that_file(
    open_at: OpenAt, problems: Problems, shoot: Shoot, sample: Any
) -> None:
    tab = open_at(DESKTOP)
    _ready(tab)
    with tab.expect_response(_predict_answer) as clicked:
        tab.get_by_role("button", name=sample.label).click()
    expect(tab.locator("#predict [data-upload-status]")).to_have_text("Done.")
    photo = (STATIC / sample.file).read_bytes()
    assert tab.locator("[data-thumb]").is_visible()
    tab.locator("#predict").scroll_into_view_if_needed()
    shoot(tab, f"sample-{sample.id}-1280")

    with tab.expect_response(_predict_answer) as uploaded:
        tab.get_by_label("Choose a picture").set_input_files(
            {"name": f"{sample.id}.jpg", "mimeType": "image/jpeg", "buffer": photo}
        )
    expect(tab.locator("#predict [data-upload-status]")).to_have_text("Done.")
    # and the file's bytes sent straight to the API, as any client would
    direct = tab.request.post(
        "/api/predict/alexnet-lecture",
        multipart={"image": {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": photo}},
    )
    assert direct.ok
    by_click, by_upload = clicked.value.json(), uploaded.value.json()
    assert len(by_click["top5"]) == 5
    assert _without_timings(by_click) == _without_timings(by_upload)
    assert _without_timings(by_click) == _without_timings(direct.json())
    assert problems.all() == []


def test_the_samples_fit_a_phone_and_credit_their_sources(
    open_at: OpenAt, problems: Problems, shoot: Shoot
) -> None:
    tab = open_at(PHONE)
    _ready(tab)
    row = tab.locator("#predict .sample-row")
    expect(row.get_by_role("button")).to_have_count(len(SAMPLES))
    credits = tab.locator("#predict .sample-credits")
    for sample in SAMPLES:
        expect(credits.locator(f'a[href="{sample.source_url}"]').first).to_be_visible()
        expect(credits.locator(f'a[href="{sample.licence_url}"]').first).to_have_text(
            sample.licence
        )
        expect(credits).to_contain_text(sample.author)
    notes = credits.get_by_role("link", name="Sources and licences")
    assert tab.request.get(notes.get_attribute("href") or "").ok
    assert tab.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    row.scroll_into_view_if_needed()
    tab.get_by_role("button", name=SAMPLES[0].label).click()
    expect(tab.locator("#predict [data-upload-status]")).to_have_text("Done.")
    shoot(tab, "sample-phone-390")
    assert problems.all() == []


def test_samples_wait_for_a_built_net(open_at: OpenAt, problems: Problems) -> None:
    """vgg11 is not built in the test repository: nothing can run, so no sample can be sent."""
    tab = open_at(DESKTOP)
    tab.goto("/nets/vgg11")
    expect(tab.locator("#predict [data-state-chip]")).to_contain_text("not built")
    for button in tab.locator("#predict .sample").all():
        expect(button).to_be_disabled()
    assert problems.all() == []
