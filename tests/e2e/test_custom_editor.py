"""The custom editor in headless Chromium: a form per layer, the JSON as a second view of the same
spec, problems in plain words at the field they are about, outputs cleared below an invalid
layer, and the spec always in the URL."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from app.core.calculator import analyze
from app.core.errors import SpecInvalid
from app.specs import builtin_registry
from app.web.catalog import decode_spec, editable_spec
from app.web.templating import volume

from .conftest import Problems, Shoot

pytestmark = pytest.mark.browser


def _checks(page: Page) -> int:
    return int(page.locator("#editor").get_attribute("data-checks") or 0)


def _after_check(page: Page, before: int) -> None:
    page.wait_for_selector(f"#editor:not([data-checks='{before}'])")


def _set(page: Page, label: str, text: str) -> None:
    before = _checks(page)
    page.get_by_label(label, exact=True).fill(text)
    _after_check(page, before)


def _outputs(page: Page) -> list[str]:
    return page.locator("#layer-list li.layer-edit .out").all_inner_texts()


def _spec_in_url(page: Page) -> Any:
    param = page.url.split("spec=", 1)[1]
    return decode_spec(param, 1_000_000)


def _expected_outputs(spec: dict[str, Any]) -> list[str]:
    return [f"→ {volume(row.output)}" for row in analyze(spec).layers]


def _open(page: Page, net_id: str = "alexnet-lecture") -> dict[str, Any]:
    page.goto(f"/custom?from={net_id}")
    page.wait_for_selector("#editor[data-state='valid']")
    return editable_spec(builtin_registry().get(net_id))


def test_the_form_shows_every_layer_with_the_fields_of_its_kind(
    page: Page, problems: Problems
) -> None:
    spec = _open(page)
    rows = page.locator("#layer-list li.layer-edit")
    expect(rows).to_have_count(len(spec["layers"]))
    conv1 = rows.nth(0)
    fields = conv1.locator(".layer-fields .field").evaluate_all(
        "(boxes) => boxes.map((box) => box.dataset.field)"
    )
    assert fields == ["out_channels", "kernel", "stride", "padding", "dilation", "groups", "bias"]
    expect(page.get_by_label(exact=True, text="out_channels of layer 0")).to_have_value("96")
    expect(page.get_by_label(exact=True, text="kernel of layer 0")).to_have_value("11")
    expect(page.get_by_label(exact=True, text="padding of layer 0")).to_have_value(
        ""
    )  # torch's default, 0
    expect(page.get_by_label(exact=True, text="bias of layer 0")).to_be_checked()
    assert _outputs(page) == _expected_outputs(spec)
    assert problems.all() == []


def test_a_bad_field_says_why_in_plain_words_and_clears_the_outputs_below(
    page: Page, problems: Problems, shoot: Shoot
) -> None:
    spec = _open(page)
    _set(page, "kernel of layer 3", "0")
    expect(page.locator("#editor")).to_have_attribute("data-state", "invalid")
    kernel = page.locator("#layer-list li.layer-edit").nth(3).locator('.field[data-field="kernel"]')
    expect(kernel.locator(".field-issue")).to_have_text("must be at least 1, but is 0")
    expect(page.get_by_label(exact=True, text="kernel of layer 3")).to_have_attribute(
        "aria-invalid", "true"
    )
    expect(page.locator("li.layer-edit.invalid")).to_have_count(1)
    # The layers before conv2 keep their outputs; from conv2 on they are cleared, not stale.
    outputs = _outputs(page)
    assert outputs[:3] == _expected_outputs(spec)[:3]
    assert outputs[3:] == [""] * (len(spec["layers"]) - 3)
    shoot(page, "custom-editor-bad-field")

    _set(page, "kernel of layer 3", "5")
    _set(page, "out_channels of layer 3", "128")
    expect(page.locator("#editor")).to_have_attribute("data-state", "valid")
    expect(page.locator("li.layer-edit.invalid")).to_have_count(0)
    fixed = copy.deepcopy(spec)
    fixed["layers"][3].update(kernel=5, out_channels=128)
    assert _outputs(page) == _expected_outputs(fixed)
    expect(page.locator("#custom-layer-3")).to_contain_text(volume(analyze(fixed).layers[3].output))
    assert _spec_in_url(page) == fixed
    assert problems.all() == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-5", "must be at least 1, but is -5"),
        ("abc", 'must be a whole number, not the text "abc"'),
        ("22.5", "must be a whole number, not 22.5"),
    ],
)
def test_a_bad_input_side_is_explained_at_its_field(
    page: Page, problems: Problems, text: str, message: str
) -> None:
    _open(page)
    _set(page, "W width", text)
    expect(page.locator("#input-width-issue")).to_have_text(message)
    expect(page.locator("#input-width")).to_have_attribute("aria-invalid", "true")
    # No layer has an output to show: every layer depends on the input.
    assert set(_outputs(page)) == {""}
    assert problems.all() == []


def test_a_calculator_problem_shows_at_the_field_it_names(page: Page, problems: Problems) -> None:
    spec = _open(page)
    conv5 = next(i for i, layer in enumerate(spec["layers"]) if layer.get("name") == "conv5")
    spec["layers"][conv5]["kernel"] = 9
    with pytest.raises(SpecInvalid) as caught:
        analyze(spec)
    (issue,) = caught.value.issues
    assert issue.field == "kernel"
    assert issue.message.startswith("kernel 9 is larger than the padded input")
    _set(page, f"kernel of layer {conv5}", "9")
    row = page.locator("#layer-list li.layer-edit").nth(conv5)
    expect(row.locator('.field[data-field="kernel"] .field-issue')).to_have_text(issue.message)
    assert problems.all() == []


def test_the_json_view_is_the_same_spec(page: Page, problems: Problems) -> None:
    spec = _open(page)
    page.get_by_role("button", name="JSON", exact=True).click()
    text = page.locator("#spec-json")
    assert json.loads(text.input_value()) == spec
    edited = copy.deepcopy(spec)
    edited["layers"][0]["kernel"] = 7
    edited["layers"].insert(2, {"kind": "batchnorm"})
    before = _checks(page)
    text.fill(json.dumps(edited))
    _after_check(page, before)
    expect(page.locator("#editor")).to_have_attribute("data-state", "valid")
    page.get_by_role("button", name="Form", exact=True).click()
    expect(page.get_by_label(exact=True, text="kernel of layer 0")).to_have_value("7")
    expect(page.get_by_label(exact=True, text="Kind of layer 2")).to_have_value("batchnorm")
    assert _outputs(page) == _expected_outputs(edited)
    assert _spec_in_url(page) == edited

    # Text that does not parse stays in the box with the reason; the form waits for JSON.
    page.get_by_role("button", name="JSON", exact=True).click()
    before = _checks(page)
    text.fill('{"name": "x", ')
    _after_check(page, before)
    expect(page.locator("#spec-json-issue")).to_contain_text("Not valid JSON yet")
    page.get_by_role("button", name="Form", exact=True).click()
    expect(page.locator("#json-view")).to_be_visible()
    assert problems.all() == []


def test_an_unknown_field_from_the_json_is_shown_and_can_be_removed(
    page: Page, problems: Problems
) -> None:
    spec = _open(page)
    spec["layers"][2]["stide"] = 2
    page.get_by_role("button", name="JSON", exact=True).click()
    before = _checks(page)
    page.locator("#spec-json").fill(json.dumps(spec))
    _after_check(page, before)
    page.get_by_role("button", name="Form", exact=True).click()
    page.wait_for_selector("#editor[data-state='invalid'] li.layer-edit.invalid")
    row = page.locator("#layer-list li.layer-edit").nth(2)
    expect(row.locator(".issue")).to_contain_text(
        "stide: unknown field: a maxpool layer has no such field; its fields are: kernel"
    )
    before = _checks(page)
    row.get_by_role("button", name="Remove the field stide").click()
    _after_check(page, before)
    expect(page.locator("#editor")).to_have_attribute("data-state", "valid")
    assert problems.all() == []


def test_layers_are_added_duplicated_moved_and_removed_from_the_keyboard(
    page: Page, problems: Problems
) -> None:
    spec = _open(page)
    count = len(spec["layers"])
    page.locator("#new-kind").select_option("dropout")
    before = _checks(page)
    page.get_by_role("button", name="Add a layer").focus()
    page.keyboard.press("Enter")
    _after_check(page, before)
    expect(page.locator("#custom-table tbody tr.layer")).to_have_count(count + 1)
    expect(page.get_by_label(exact=True, text=f"Kind of layer {count}")).to_have_value("dropout")

    before = _checks(page)
    page.get_by_role("button", name=f"Move layer {count} up", exact=True).focus()
    page.keyboard.press("Enter")
    _after_check(page, before)
    expect(page.get_by_label(exact=True, text=f"Kind of layer {count - 1}")).to_have_value(
        "dropout"
    )

    before = _checks(page)
    page.get_by_role("button", name="Duplicate layer 1 below").click()
    _after_check(page, before)
    expect(page.locator("#editor")).to_have_attribute("data-state", "valid")
    expect(page.get_by_label(exact=True, text="Kind of layer 2")).to_have_value("relu")
    names_differ = "relu1-copy"
    expect(page.get_by_label(exact=True, text="Name of layer 2")).to_have_value(names_differ)

    for index in (count, 2):
        before = _checks(page)
        page.get_by_role("button", name=f"Remove layer {index}", exact=True).click()
        _after_check(page, before)
    expect(page.locator("#editor")).to_have_attribute("data-state", "valid")
    assert _spec_in_url(page) == spec
    with page.expect_download() as download:
        page.get_by_role("button", name="Download JSON").click()
    assert download.value.suggested_filename == "alexnet-as-taught.json"
    assert problems.all() == []


def test_changing_a_kind_keeps_the_fields_both_kinds_have(page: Page, problems: Problems) -> None:
    spec = _open(page)
    before = _checks(page)
    page.get_by_label(exact=True, text="Kind of layer 2").select_option("avgpool")
    _after_check(page, before)
    expected = {**spec["layers"][2], "kind": "avgpool"}
    assert _spec_in_url(page)["layers"][2] == expected
    before = _checks(page)
    page.get_by_label(exact=True, text="Kind of layer 2").select_option("conv")
    _after_check(page, before)
    # conv's required out_channels comes from its preset; kernel and stride carry over.
    layer = _spec_in_url(page)["layers"][2]
    assert (layer["kind"], layer["kernel"], layer["stride"]) == ("conv", 3, 2)
    assert isinstance(layer["out_channels"], int)
    assert problems.all() == []


def test_a_shared_custom_link_opens_the_same_spec(page: Page, problems: Problems) -> None:
    spec = _open(page, "zfnet-lecture")
    _set(page, "out_channels of layer 0", "64")
    expect(page.locator("#editor")).to_have_attribute("data-state", "valid")
    spec["layers"][0]["out_channels"] = 64
    shared = page.url
    page.goto(shared)
    page.wait_for_selector("#editor[data-state='valid']")
    expect(page.get_by_label(exact=True, text="out_channels of layer 0")).to_have_value("64")
    expect(page.locator("#custom-layer-0")).to_contain_text(volume(analyze(spec).layers[0].output))
    assert problems.all() == []
