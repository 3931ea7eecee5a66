"""Browser tests: a real uvicorn server and Debian's headless Chromium driven by Playwright.

The server runs in a subprocess on a free loopback port for the whole session, serving the
shared test model repository (tests/conftest.py); each test gets a fresh page whose console
errors, page errors and failed requests are collected, and every test ends with a screenshot in
artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

ROOT = Path(__file__).resolve().parents[2]
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
START_TIMEOUT_S = 30.0
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_ready(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {server.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not become ready within {START_TIMEOUT_S} s")


def _server_env(models_root: Path) -> dict[str, str]:
    """The shared test repository (tests/conftest.py), on the CPU, and no background build."""
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CONVATLAS_MODELS_DIR": str(models_root),
        "CONVATLAS_BUILD_ON_START": "0",
        "CONVATLAS_PROVIDERS": "cpu",
    }


@pytest.fixture(scope="session")
def base_url(models_root: Path) -> Iterator[str]:
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=_server_env(models_root))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url, server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


@dataclass
class Problems:
    """What a page reported that a working page never does."""

    console: list[str] = field(default_factory=list)
    page: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return [*self.console, *self.page, *self.requests]


@pytest.fixture
def problems() -> Problems:
    return Problems()


Shoot = Callable[[Page, str], None]


@pytest.fixture(scope="session")
def shoot() -> Shoot:
    """Save a named screenshot of a state a test passes through (the end state is automatic)."""

    def save(tab: Page, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)

    return save


@pytest.fixture
def page(
    browser: Browser, base_url: str, problems: Problems, request: pytest.FixtureRequest
) -> Iterator[Page]:
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT, accept_downloads=True)
    tab = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.console.append(message.text)

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.page.append(str(error)))
    tab.on("requestfailed", lambda req: problems.requests.append(f"{req.method} {req.url}"))
    yield tab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")
    tab.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    context.close()
