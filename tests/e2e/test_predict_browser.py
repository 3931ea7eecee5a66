"""Live inference in the browser: upload on a net page and on the compare page, under the real CSP.

The server serves the shared test repository: alexnet-lecture and zfnet-lecture, untrained;
every other net is known but not built. Each test fails on any console error, so normal use
(including a net that is not built yet) must never produce a failed request.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from playwright.sync_api import FilePayload, Page, expect

from app.core.calculator import builtin_table
from app.web.templating import volume

from .conftest import Problems, Shoot

pytestmark = pytest.mark.browser

FEATURE_KINDS = ("conv", "maxpool")


def _jpeg(data: bytes) -> FilePayload:
    return {"name": "holiday.jpg", "mimeType": "image/jpeg", "buffer": data}


def _bars(page: Page, element_id: str) -> list[dict[str, Any]]:
    page.wait_for_selector(f"#{element_id}.js-plotly-plot")
    bars: list[dict[str, Any]] = page.evaluate(
        """(id) => document.getElementById(id).data.map(
            (t) => ({type: t.type, orientation: t.orientation, x: t.x, y: t.y}))""",
        element_id,
    )
    return bars


def _check_top5_bars(page: Page, element_id: str) -> None:
    [trace] = _bars(page, element_id)
    assert (trace["type"], trace["orientation"]) == ("bar", "h")
    assert len(trace["x"]) == 5
    assert len(set(trace["y"])) == 5
    assert trace["x"] == sorted(trace["x"])  # drawn bottom-up: the most probable on top
    assert trace["y"][-1].startswith("1. ")


def _check_strip(page: Page, prefix: str, net_id: str) -> None:
    """One column per conv and pool layer after the input, labelled with its W x H x D."""
    layers = [row for row in builtin_table(net_id).layers if row.kind in FEATURE_KINDS]
    strip = page.locator(f"#{prefix}-features")
    expect(strip).to_be_visible()
    columns = strip.locator(".feature-col")
    expect(columns).to_have_count(1 + len(layers))
    for index, row in enumerate(layers, start=1):
        expect(columns.nth(index).locator(".feature-name")).to_have_text(row.name)
        expect(columns.nth(index).locator(".feature-volume")).to_have_text(volume(row.output))
        expect(columns.nth(index).locator("img")).to_have_count(6)
    first, last = (columns.nth(i).locator("img").first.bounding_box() for i in (1, len(layers)))
    assert first is not None
    assert last is not None
    assert last["width"] < first["width"]  # W x H visibly shrinks along the strip


def test_an_upload_on_a_net_page_shows_the_top5_and_the_feature_maps(
    page: Page, problems: Problems, shoot: Shoot, photo_jpeg: bytes
) -> None:
    page.goto("/nets/alexnet-lecture")
    panel = page.locator("#predict")
    expect(panel.locator("[data-state-chip]")).to_contain_text("ready")
    expect(panel.locator("[data-untrained-banner]")).to_be_visible()
    expect(panel.locator("[data-untrained-banner]")).to_contain_text("these predictions are noise")
    shoot(page, "net-page-upload-ready")

    picker = page.get_by_label("Choose a picture")
    picker.focus()
    expect(picker).to_be_focused()  # a real file input, reachable by keyboard
    picker.set_input_files(_jpeg(photo_jpeg))

    _check_top5_bars(page, "net-top5")
    expect(panel.locator("[data-top5-list] li")).to_have_count(5)
    expect(panel.locator("[data-thumb]")).to_be_visible()
    assert (panel.locator("[data-thumb]").get_attribute("src") or "").startswith("blob:")
    expect(panel.locator('[data-fact="provider"]')).to_have_text("CPUExecutionProvider")
    for key in ("decode", "preprocess", "inference", "total"):
        expect(panel.locator(f'[data-fact="{key}"]')).to_contain_text(" ms")
    _check_strip(page, "net", "alexnet-lecture")
    expect(panel.locator("[data-upload-status]")).to_have_text("Done.")
    page.locator("#predict").scroll_into_view_if_needed()
    shoot(page, "net-page-prediction")
    assert problems.all() == []


def test_a_picture_dropped_on_the_drop_zone_runs_too(
    page: Page, problems: Problems, sample_uploads: dict[str, bytes]
) -> None:
    page.goto("/nets/zfnet-lecture")
    expect(page.locator("#predict [data-state-chip]")).to_contain_text("ready")
    page.evaluate(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));
            const zone = document.querySelector('[data-dropzone]');
            const init = {dataTransfer: transfer, bubbles: true, cancelable: true};
            zone.dispatchEvent(new DragEvent('dragover', init));
            zone.dispatchEvent(new DragEvent('drop', init));
        }""",
        base64.b64encode(sample_uploads["PNG with alpha"]).decode("ascii"),
    )
    _check_top5_bars(page, "net-top5")
    _check_strip(page, "net", "zfnet-lecture")
    assert problems.all() == []


def test_a_file_that_is_not_a_picture_is_refused_before_sending(
    page: Page, problems: Problems
) -> None:
    page.goto("/nets/alexnet-lecture")
    expect(page.locator("#predict [data-state-chip]")).to_contain_text("ready")
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.method))
    page.get_by_label("Choose a picture").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a picture"}
    )
    expect(page.locator("[data-upload-status]")).to_contain_text("not a picture this server reads")
    assert "POST" not in requests
    expect(page.locator("#net-top5")).to_be_hidden()
    assert problems.all() == []


def test_a_net_not_built_says_why_instead_of_failing(
    page: Page, problems: Problems, shoot: Shoot
) -> None:
    page.goto("/nets/vgg11")
    panel = page.locator("#predict")
    expect(panel.locator("[data-state-chip]")).to_have_text("not built")
    expect(panel.locator("[data-net-state]")).to_contain_text("convatlas models build vgg11")
    expect(page.get_by_label("Choose a picture")).to_be_disabled()
    expect(panel.locator("[data-untrained-banner]")).to_be_hidden()  # VGG-11 has published weights
    panel.scroll_into_view_if_needed()
    shoot(page, "net-page-model-not-built")
    assert problems.all() == []


def test_one_upload_on_the_compare_page_runs_both_nets(
    page: Page, problems: Problems, shoot: Shoot, photo_jpeg: bytes
) -> None:
    page.goto("/compare")  # the lecture's AlexNet vs ZFNet, both in the test repository
    chips = page.locator("#predict [data-state-chip]")
    expect(chips).to_have_count(2)
    for index in range(2):
        expect(chips.nth(index)).to_contain_text("ready")
    with page.expect_request("**/api/predict?ids=alexnet-lecture,zfnet-lecture") as both:
        page.get_by_label("Choose a picture").set_input_files(_jpeg(photo_jpeg))
    assert both.value.method == "POST"
    _check_top5_bars(page, "a-top5")
    _check_top5_bars(page, "b-top5")
    expect(page.locator("#predict [data-untrained-banner]:visible")).to_have_count(2)
    _check_strip(page, "a", "alexnet-lecture")
    _check_strip(page, "b", "zfnet-lecture")
    page.locator("#predict").scroll_into_view_if_needed()
    shoot(page, "compare-page-prediction")
    assert problems.all() == []


def test_the_compare_page_runs_the_net_that_is_built_and_says_why_the_other_is_not(
    page: Page, problems: Problems, photo_jpeg: bytes
) -> None:
    page.goto("/compare?a=alexnet-lecture&b=vgg11")
    results = page.locator("#predict [data-net-result]")
    expect(results.nth(1).locator("[data-state-chip]")).to_have_text("not built")
    expect(results.nth(0).locator("[data-state-chip]")).to_contain_text("ready")
    with page.expect_request("**/api/predict/alexnet-lecture") as single:
        page.get_by_label("Choose a picture").set_input_files(_jpeg(photo_jpeg))
    assert single.value.method == "POST"
    _check_top5_bars(page, "a-top5")
    expect(page.locator("#b-top5")).to_be_hidden()
    expect(page.locator("#b-features")).to_be_hidden()
    assert problems.all() == []


def test_a_picture_the_server_refuses_clears_the_last_answer_and_says_why(
    page: Page, problems: Problems, photo_jpeg: bytes
) -> None:
    page.goto("/nets/alexnet-lecture")
    picker = page.get_by_label("Choose a picture")
    picker.set_input_files(_jpeg(photo_jpeg))
    _check_top5_bars(page, "net-top5")
    picker.set_input_files(_jpeg(photo_jpeg[:600]))  # a JPEG header, then nothing
    status = page.locator("[data-upload-status]")
    expect(status).to_have_class("upload-status bad")
    expect(status).to_contain_text("damaged")
    expect(page.locator("#net-top5")).to_be_hidden()
    expect(page.locator("#net-features")).to_be_hidden()
    # The one failed request is the refusal itself, which Chromium logs as a console error.
    assert problems.console
    assert all("status of 422" in message for message in problems.console)
    assert problems.page == problems.requests == []
