"""Practice in the browser, from the keyboard only: type, Enter to check, Enter for the next layer.

Every expected number comes from the calculator's tables; the page computes none itself. Each
test fails on any console error, page error or failed request, and leaves screenshots in
artifacts/screenshots/ at a laptop's 1280x800 and a phone's 390x844.
"""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from playwright.sync_api import Locator, Page, expect

from app.core.calculator import builtin_table
from app.core.practice import Practice, Step, plan
from app.core.table import LayerRow
from app.specs import builtin_registry
from app.web.templating import TIMES, volume

from .conftest import DESKTOP, PHONE, VIEWPORTS, OpenAt, Problems, Shoot
from .test_accessibility import blocking_violations

pytestmark = pytest.mark.browser

STORE = "convatlas-practice-v1:net:alexnet-lecture"


def steps_of(net_id: str) -> list[Step]:
    return plan(Practice(builtin_registry().get(net_id), builtin_table(net_id)))


def type_answer(tab: Page, step: Step, row: LayerRow, params: int | None = None) -> None:
    """Type the layer's answers into the boxes, in order, with Tab between them, then Enter."""
    values: list[str] = []
    if "output" in step.asks:
        out = row.output
        values += (
            [str(out.channels)]
            if step.vector
            else [str(out.width), str(out.height), str(out.channels)]
        )
    if "params" in step.asks:
        values.append(str(row.params if params is None else params))
    for index, value in enumerate(values):
        if index:
            tab.keyboard.press("Tab")
        tab.keyboard.type(value)
    tab.keyboard.press("Enter")


def focused_name(tab: Page) -> str:
    name: str = tab.evaluate("document.activeElement?.name || document.activeElement?.tagName")
    return name


def no_sideways_scroll(tab: Page) -> None:
    width = tab.evaluate("document.documentElement.scrollWidth")
    client = tab.evaluate("document.documentElement.clientWidth")
    assert width <= client, f"{tab.url} is {width} px wide in {client} px"


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_a_student_practises_from_the_keyboard_and_is_told_the_slip(
    open_at: OpenAt, problems: Problems, shoot: Shoot, device: str
) -> None:
    viewport = VIEWPORTS[device]
    width = viewport["width"]
    tab = open_at(viewport)
    tab.goto("/practice")
    steps = steps_of("alexnet-lecture")
    rows = builtin_table("alexnet-lecture").layers
    card = tab.locator("#practice-card")
    expect(card.locator("[data-step-name]")).to_have_text("conv1")
    expect(card.locator("[data-step-input]")).to_have_text(volume(rows[0].input))
    assert focused_name(tab) == "width"  # typing starts at once
    shoot(tab, f"practice-start-{width}")

    # conv1: the volume right, the biases forgotten (the issue's own example)
    type_answer(tab, steps[0], rows[0], params=34_848)
    params = card.locator('[data-feedback="params"]')
    expect(params).to_have_class("feedback wrong")
    expect(params).to_contain_text("34,944, not your 34,848")
    expect(params).to_contain_text("forgot_bias")
    expect(params).to_contain_text("Forgot the biases")
    expect(params).to_contain_text(rows[0].formula.params or "")  # the arithmetic, revealed
    output = card.locator('[data-feedback="output"]')
    expect(output).to_have_class("feedback right")
    expect(output).to_contain_text(rows[0].formula.output)
    expect(tab.locator('[data-step-item="0"] [data-mark]')).to_have_text("✗ forgot_bias")
    next_button = tab.get_by_role("button", name="Next layer")
    expect(next_button).to_be_focused()
    tab.keyboard.press("Enter")
    assert tab.locator("#answer-form").evaluate("form => form.matches(':focus-within')")
    shoot(tab, f"practice-slip-{width}")
    assert blocking_violations(tab) == []

    # relu1, asked once: the same volume and no weights; then pool1
    expect(card.locator("[data-step-name]")).to_have_text("relu1")
    assert focused_name(tab) == "width"
    type_answer(tab, steps[1], rows[1])
    expect(card.locator('[data-feedback="output"]')).to_have_class("feedback right")
    tab.keyboard.press("Enter")
    expect(card.locator("[data-step-name]")).to_have_text("pool1")
    type_answer(tab, steps[2], rows[2], params=96 * 9)  # as if pooling had weights
    expect(card.locator('[data-feedback="params"]')).to_contain_text("pool_has_params")
    expect(tab.locator("[data-score]")).to_have_text("6 of 26 answered · 4 right · slips: 2")
    no_sideways_scroll(tab)
    shoot(tab, f"practice-pool-{width}")

    # the progress is in this browser and the layer in the URL: a reload shows both again
    assert unquote(tab.url).endswith("#layer=pool1")
    stored = json.loads(tab.evaluate(f"localStorage.getItem('{STORE}')"))
    assert stored["answers"]["conv1"]["params"]["result"]["slip"] == "forgot_bias"
    tab.reload()
    expect(card.locator("[data-step-name]")).to_have_text("pool1")
    expect(card.locator('[data-feedback="params"]')).to_contain_text("pool_has_params")
    expect(tab.locator('[data-step-item="0"] [data-mark]')).to_have_text("✗ forgot_bias")
    assert problems.all() == []


def test_every_layer_of_a_net_can_be_practised_to_the_end(
    open_at: OpenAt, problems: Problems, shoot: Shoot
) -> None:
    """alexnet-2012 (groups, LRN, dropout): each asked layer answered right from the keyboard,
    the layers with nothing new to compute passed over, then the summary."""
    tab = open_at(DESKTOP)
    tab.goto("/practice?net=alexnet-2012")
    steps = steps_of("alexnet-2012")
    rows = builtin_table("alexnet-2012").layers
    asked = [step for step in steps if step.asks]
    for step in asked:
        expect(tab.locator("[data-step-name]")).to_have_text(step.name)
        type_answer(tab, step, rows[step.index])
        for quantity in step.asks:
            feedback = tab.locator(f'[data-feedback="{quantity}"]')
            expect(feedback).to_have_class("feedback right")
        tab.keyboard.press("Enter")
    done = tab.locator("[data-done]")
    expect(done).to_be_visible()
    answers = sum(len(step.asks) for step in steps)
    expect(done.locator("[data-done-score]")).to_have_text(f"{answers} of {answers} answers right.")
    expect(tab.locator("#done-title")).to_be_focused()
    skipped = [step for step in steps if not step.asks]
    assert skipped  # the second ReLU, LRN and dropout: shown, not asked
    for step in skipped:
        mark = tab.locator(f'[data-step-item="{step.index}"] [data-mark]')
        expect(mark).to_have_text("nothing new to compute")
    shoot(tab, "practice-done-1280")
    assert blocking_violations(tab) == []
    tab.get_by_role("button", name="Start over").first.click()
    expect(tab.locator("[data-step-name]")).to_have_text("conv1")
    expect(tab.locator("[data-score]")).to_contain_text(f"0 of {answers} answered")
    assert problems.all() == []


def test_an_unrounded_answer_after_flatten_and_a_jump_from_the_list(
    open_at: OpenAt, problems: Problems
) -> None:
    tab = open_at(PHONE)
    tab.goto("/practice?net=zfnet-2013")
    rows = {row.name: row for row in builtin_table("zfnet-2013").layers}
    unrounded = TIMES.join(["110.5", "110.5", "96"])  # (224 - 7 + 2*1) / 2 + 1, not floored
    tab.keyboard.type("110.5")
    tab.keyboard.press("Tab")
    tab.keyboard.type("110.5")
    tab.keyboard.press("Tab")
    tab.keyboard.type("96")
    tab.keyboard.press("Tab")
    tab.keyboard.type(str(rows["conv1"].params))
    tab.keyboard.press("Enter")
    output = tab.locator('[data-feedback="output"]')
    expect(output).to_contain_text(f"{volume(rows['conv1'].output)}, not your {unrounded}")
    expect(output).to_contain_text("no_floor")
    # any layer from the list: fc6 asks for the vector's length alone
    tab.locator('[data-goto]:has-text("fc6")').click()
    expect(tab.locator("[data-vector-fields]")).to_be_visible()
    expect(tab.locator("[data-volume-fields]").first).to_be_hidden()
    tab.get_by_label("Length").fill(str(rows["fc6"].output.channels))
    tab.get_by_label("Weights + biases").fill(str(rows["fc6"].params - rows["fc6"].biases))
    tab.get_by_label("Weights + biases").press("Enter")
    expect(tab.locator('[data-feedback="output"]')).to_have_class("feedback right")
    expect(tab.locator('[data-feedback="params"]')).to_contain_text("forgot_bias")
    no_sideways_scroll(tab)
    assert problems.all() == []


def test_a_box_left_empty_is_named_and_nothing_is_sent(open_at: OpenAt, problems: Problems) -> None:
    tab = open_at(DESKTOP)
    sent: list[str] = []
    tab.on(
        "request",
        lambda request: sent.append(request.url) if "/api/practice" in request.url else None,
    )
    tab.goto("/practice")
    tab.keyboard.type("55")
    tab.keyboard.press("Enter")
    expect(tab.locator("[data-form-problem]")).to_contain_text("Fill in every box with a number")
    expect(tab.get_by_label("H", exact=True)).to_be_focused()
    assert sent == []
    assert problems.all() == []


def _linked_spec_name(tab: Page, link: Locator, expected: str, timeout_s: float = 10) -> str:
    """The name in the spec the link carries, once it is ``expected`` (the editor checks an
    edit after a short pause) or the time is up. Read from Python: the pages' policy refuses
    the string evaluation that wait_for_function needs."""
    name = ""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        param = parse_qs(urlsplit(link.get_attribute("href") or "").query).get("spec", [""])[0]
        name = json.loads(base64.urlsafe_b64decode(param + "=" * (-len(param) % 4)))["name"]
        if name == expected:
            break
        tab.wait_for_timeout(100)
    return name


def test_the_custom_pages_link_practises_the_spec_being_edited(
    open_at: OpenAt, problems: Problems
) -> None:
    tab = open_at(DESKTOP)
    tab.goto("/custom?from=zfnet-lecture")
    tab.locator("#spec-name").fill("My ZFNet")
    link = tab.get_by_role("link", name="Practice this net")
    linked = _linked_spec_name(tab, link, "My ZFNet")  # the editor keeps its link current
    assert linked == "My ZFNet"
    assert link.get_attribute("href") == "/practice" + tab.evaluate("location.search")
    link.click()
    expect(tab.get_by_role("heading", name="Practice: My ZFNet")).to_be_visible()
    expect(tab.locator("[data-step-name]")).to_have_text("conv1")
    tab.keyboard.type("1")
    tab.keyboard.press("Tab")
    tab.keyboard.type("1")
    tab.keyboard.press("Tab")
    tab.keyboard.type("1")
    tab.keyboard.press("Tab")
    tab.keyboard.type("1")
    tab.keyboard.press("Enter")
    expect(tab.locator('[data-feedback="output"]')).to_have_class("feedback wrong")
    assert problems.all() == []
