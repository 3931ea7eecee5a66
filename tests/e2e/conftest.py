"""Browser tests: a real server (scripts/liveserver.py), driven by Playwright in Debian's headless
Chromium.

The server runs in a subprocess on a free loopback port, and Chromium once, for all of
tests/e2e (package scope: both end with the folder's last test, not the session), serving the
shared test model repository (tests/conftest.py); each test gets a fresh page whose console
errors, page errors and failed requests are collected, and every test ends with a screenshot in
artifacts/screenshots/.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    ViewportSize,
    sync_playwright,
)

from scripts.liveserver import ROOT, server_env, serving

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}
# The widths every page is judged at: a projector-sized laptop and a phone.
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


@pytest.fixture(scope="package")
def base_url(models_root: Path) -> Iterator[str]:
    """The server as `make run` starts it, on the shared test repository (tests/conftest.py),
    on the CPU and with no background build."""
    with serving(server_env(models_root)) as server:
        yield server.url


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


ABORTED = "net::ERR_ABORTED"
# An abort is a navigation's doing only if the navigation came this close to it (either side:
# Chromium may report the abort before the next document's request). Far apart, it is the page's.
NAVIGATION_WINDOW_S = 5.0


@dataclass(frozen=True)
class FailedRequest:
    description: str
    aborted: bool
    # How many documents the tab had asked for when the request started.
    navigation: int
    failed_at: float  # time.monotonic()


@dataclass
class Problems:
    """What a page reported that a working page never does."""

    console: list[str] = field(default_factory=list)
    page: list[str] = field(default_factory=list)
    failed_requests: list[FailedRequest] = field(default_factory=list)
    navigated_at: list[float] = field(default_factory=list)  # each document's request

    @property
    def navigations(self) -> int:
        return len(self.navigated_at)

    @property
    def requests(self) -> list[str]:
        """Failed requests, less those a later navigation cut short: a reload aborts what the
        old document still had in flight. Judged when asked, since the abort may be reported
        before the next document's request."""
        return [
            failed.description
            for failed in self.failed_requests
            if not self.cut_short_by_a_navigation(failed)
        ]

    def cut_short_by_a_navigation(self, failed: FailedRequest) -> bool:
        later = self.navigated_at[failed.navigation :]  # navigations after the request began
        near = any(abs(at - failed.failed_at) <= NAVIGATION_WINDOW_S for at in later)
        return failed.aborted and near

    def all(self) -> list[str]:
        return [*self.console, *self.page, *self.requests]


@pytest.fixture
def problems() -> Problems:
    return Problems()


Shoot = Callable[[Page, str], None]
# Long tables are laid out only near the viewport (content-visibility: auto, .render-lazily),
# and a full-page capture does not bring them near it: for the picture, they render as a reader
# scrolling would see them.
RENDER_EVERYTHING = ".render-lazily { content-visibility: visible !important; }"


def full_page_screenshot(tab: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.add_style_tag(content=RENDER_EVERYTHING)
    tab.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


# Tabs whose final state the test itself captured (``final_screenshot``): the end-of-test
# screenshot is a copy of that file, not a second capture of the same long page.
FINAL_SHOTS: dict[Page, Path] = {}


def final_screenshot(tab: Page, path: Path) -> None:
    """A full-page screenshot at ``path`` as the test's last act on ``tab``, which then also
    serves as the test's end-of-test screenshot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tab.add_style_tag(content=RENDER_EVERYTHING)
    tab.screenshot(path=path, full_page=True)
    FINAL_SHOTS[tab] = path


def end_of_test_screenshot(tab: Page, name: str) -> None:
    final = FINAL_SHOTS.pop(tab, None)
    if final is None:
        full_page_screenshot(tab, name)
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(final, SCREENSHOTS / f"{name}.png")


@pytest.fixture(scope="session")
def shoot() -> Shoot:
    """Save a named screenshot of a state a test passes through (the end state is automatic)."""
    return full_page_screenshot


def is_the_browsers_favicon_fetch(request: Request) -> bool:
    """Chromium fetches the tab's icon itself (resource type "other"), after the load event,
    and may abort it when a reload starts or a fetch of the same icon is already under way: seen
    in CI both before and after the reload's navigation request. Nothing this fixture would catch
    is hidden: a missing icon is a 404 response, not a failed request (and the page's own <img>
    of it, type "image", logs a console error then)."""
    return request.resource_type == "other" and "/favicon." in request.url


def watch_requests(tab: Page, problems: Problems) -> None:
    started_at: dict[Request, int] = {}

    def on_request(request: Request) -> None:
        # A new document for the tab; a same-document (#fragment) navigation sends no request.
        if request.is_navigation_request() and request.frame == tab.main_frame:
            problems.navigated_at.append(time.monotonic())
        started_at[request] = problems.navigations

    def on_failed(request: Request) -> None:
        if is_the_browsers_favicon_fetch(request) and request.failure == ABORTED:
            return  # the browser's own, dropped as it likes (the page's <img> is type "image")
        failed = FailedRequest(
            description=f"{request.method} {request.url} ({request.failure})",
            aborted=request.failure == ABORTED,
            navigation=started_at.pop(request, problems.navigations),
            failed_at=time.monotonic(),
        )
        problems.failed_requests.append(failed)

    tab.on("request", on_request)
    tab.on("requestfinished", lambda request: started_at.pop(request, None))
    tab.on("requestfailed", on_failed)


def watched_tab(
    browser: Browser, base_url: str, problems: Problems, viewport: ViewportSize
) -> Page:
    """A fresh tab whose console errors, page errors and failed requests go to ``problems``."""
    context = browser.new_context(base_url=base_url, viewport=viewport, accept_downloads=True)
    tab = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.console.append(message.text)

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.page.append(str(error)))
    watch_requests(tab, problems)
    return tab


def node_slug(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")


@pytest.fixture
def page(
    browser: Browser, base_url: str, problems: Problems, request: pytest.FixtureRequest
) -> Iterator[Page]:
    tab = watched_tab(browser, base_url, problems, VIEWPORT)
    yield tab
    end_of_test_screenshot(tab, node_slug(request))
    FINAL_SHOTS.pop(tab, None)
    tab.context.close()


OpenAt = Callable[[ViewportSize], Page]


@pytest.fixture
def open_at(
    browser: Browser, base_url: str, problems: Problems, request: pytest.FixtureRequest
) -> Iterator[OpenAt]:
    """Tabs at a given viewport (each test's last one ends in a screenshot, as with ``page``)."""
    tabs: list[Page] = []

    def opener(viewport: ViewportSize) -> Page:
        tabs.append(watched_tab(browser, base_url, problems, viewport))
        return tabs[-1]

    yield opener
    if tabs:
        end_of_test_screenshot(tabs[-1], node_slug(request))
    for tab in tabs:
        FINAL_SHOTS.pop(tab, None)
        tab.context.close()
