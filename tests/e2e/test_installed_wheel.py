"""The package as a user installs it: the sdist and the wheel built from this checkout's files,
the wheel installed (not editable) into a new virtual environment with only what serving needs,
and `convatlas serve` started from an unrelated folder, where every page loads with its
scripts in headless Chromium.

About a minute and a half here: the build (setuptools, from pip's cache or PyPI) and the
install (ONNX Runtime, numpy, FastAPI ... from pip's cache or PyPI, at the tested versions)
take most of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Response

import app
from app.specs import builtin_registry
from scripts.liveserver import LOOPBACK, free_port

from .conftest import Problems, watch_requests

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
NAME = f"convatlas-{app.__version__}"
WHEEL = f"{NAME}-py3-none-any.whl"
START_TIMEOUT_S = 60.0
# What a page loads by itself: its scripts and stylesheets (module preloads come with them).
LINKED = "script[src], link[rel=stylesheet]"
# Every page the app serves, and its status: the error page (an unknown net) included.
PAGES = {
    "/": 200,
    **{f"/nets/{net_id}": 200 for net_id in builtin_registry().ids()},
    "/compare": 200,
    "/compare?a=vgg11&b=vgg19-bn": 200,
    "/custom": 200,
    "/lecture": 200,
    "/lecture?verdict=differs": 200,
    "/docs": 200,
    "/nets/lenet": 404,
}


def checkout_files() -> list[str]:
    """What a fresh clone of this checkout holds: tracked files and new ones not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    names = [name for name in listed.stdout.decode().split("\0") if name]
    return [name for name in names if (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build` on a copy of the checkout: the sdist, then the wheel from the sdist
    (so the sdist alone must carry everything the wheel needs)."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    for name in checkout_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / name).read_bytes())
    out = work / "dist"
    command = [sys.executable, "-m", "build", "--outdir", str(out), str(source)]
    subprocess.run(command, check=True, capture_output=True)
    return out


def test_the_wheel_carries_the_pages_the_static_files_and_the_data(dist: Path) -> None:
    with zipfile.ZipFile(dist / WHEEL) as wheel:
        names = set(wheel.namelist())
        metadata = HeaderParser().parsestr(wheel.read(f"{NAME}.dist-info/METADATA").decode())
    for folder, packaged in (("templates", "app/templates"), ("static", "app/static")):
        files = [p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*")]
        expected = {f"{packaged}/{name}" for name in files if (ROOT / folder / name).is_file()}
        assert expected, folder
        assert expected <= names, sorted(expected - names)
    data = [p.relative_to(ROOT).as_posix() for p in (ROOT / "app").rglob("data/*") if p.is_file()]
    assert set(data) <= names
    assert f"{NAME}.dist-info/licenses/LICENSE" in names
    assert metadata["License-Expression"] == "MIT"
    assert "Programming Language :: Python :: 3.11" in metadata.get_all("Classifier")
    assert not [name for name in names if name.startswith(("tests/", "scripts/"))]


def test_the_sdist_carries_the_top_level_folders_and_the_tested_set(dist: Path) -> None:
    with tarfile.open(dist / f"{NAME}.tar.gz") as sdist:
        names = {name.removeprefix(f"{NAME}/") for name in sdist.getnames()}
    assert {"LICENSE", "README.md", "pyproject.toml", "constraints.txt"} <= names
    assert {"templates/base.html", "static/vendor/plotly/plotly-basic.min.js"} <= names


@dataclass
class Installed:
    venv: Path
    elsewhere: Path  # an unrelated folder, the server's working directory

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def convatlas(self) -> Path:
        return self.venv / "bin" / "convatlas"

    def env(self) -> dict[str, str]:
        """No trace of this checkout: no PYTHONPATH, no virtualenv of ours."""
        hidden = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
        env = {key: value for key, value in os.environ.items() if key not in hidden}
        return {**env, "PYTHONUNBUFFERED": "1", "CONVATLAS_PROVIDERS": "cpu"}


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A new venv (no system site-packages) with the wheel and what serving needs, at the
    tested versions. This checkout's pip installs into it (`pip --python`), which spares the
    new venv a copy of pip of its own."""
    work = tmp_path_factory.mktemp("installed")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    command = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    command += ["--quiet", "--no-compile", "--constraint", str(ROOT / "constraints.txt")]
    subprocess.run([*command, str(dist / WHEEL)], check=True, capture_output=True)
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return Installed(venv, elsewhere)


def run(installed: Installed, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed.convatlas), *args],
        cwd=installed.elsewhere,
        env=installed.env(),
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_installed_package_is_the_wheels_not_this_checkout(installed: Installed) -> None:
    where = subprocess.run(
        [str(installed.python), "-c", "import app, torch"],
        cwd=installed.elsewhere,
        env=installed.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert "No module named 'torch'" in where.stderr  # serving needs no torch
    found = subprocess.run(
        [str(installed.python), "-c", "import app.settings as s; print(s.site_dir('static'))"],
        cwd=installed.elsewhere,
        env=installed.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    static = Path(found.stdout.strip())
    assert static.is_relative_to(installed.venv), static
    assert static.parts[-3:] == ("site-packages", "app", "static")


def test_the_installed_command_says_its_version_and_what_it_lacks(installed: Installed) -> None:
    version = run(installed, "--version")
    assert (version.returncode, version.stdout) == (0, f"convatlas {app.__version__}\n")
    listed = run(installed, "list")
    assert listed.returncode == 0
    assert "vgg16" in listed.stdout
    build = run(installed, "models", "build", "alexnet-lecture")
    assert build.returncode == 3
    assert build.stdout == ""
    assert "which this install lacks: install convatlas[build]" in build.stderr


@dataclass
class Served:
    url: str
    log: Path
    models: Path


@pytest.fixture(scope="module")
def served(installed: Installed) -> Iterator[Served]:
    port = free_port()
    log = installed.elsewhere / "server.log"
    command = [str(installed.convatlas), "serve", "--host", LOOPBACK, "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--log-level", "warning", "--no-access-log"],
            cwd=installed.elsewhere,
            env=installed.env(),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://{LOOPBACK}:{port}"
    try:
        _wait_ready(process, url, log)
        yield Served(url, log, installed.elsewhere / "models")
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT_S:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready within {START_TIMEOUT_S} s: {log.read_text()}")


def test_the_server_reads_its_models_from_the_folder_it_runs_in(served: Served) -> None:
    inference = httpx.get(f"{served.url}/readyz").json()["inference"]
    # `models`, relative to the folder the server runs in (Settings' default)
    assert (served.models.parent / inference["models_dir"]).resolve() == served.models.resolve()
    assert inference["build_running"] is False
    assert not any(model["available"] for model in inference["models"])
    assert "the build needs torch" in served.log.read_text()


def _watch(tab: Page, problems: Problems, assets: list[Response]) -> None:
    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.console.append(message.text)

    def on_response(response: Response) -> None:
        if response.request.resource_type in {"script", "stylesheet"}:
            assets.append(response)

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.page.append(str(error)))
    tab.on("response", on_response)
    watch_requests(tab, problems)


@pytest.fixture(scope="module")
def visitor(browser: Browser, served: Served) -> Iterator[BrowserContext]:
    """One browser profile for every page, as a visitor browsing them: the content-hashed
    scripts come from its cache after the first page that loads them."""
    context = browser.new_context(base_url=served.url)
    yield context
    context.close()


@pytest.mark.parametrize(("path", "status"), PAGES.items())
def test_every_page_loads_with_its_scripts(visitor: BrowserContext, path: str, status: int) -> None:
    problems = Problems()
    assets: list[Response] = []
    tab = visitor.new_page()
    _watch(tab, problems, assets)
    try:
        page = tab.goto(path, wait_until="load")
        assert page is not None
        assert page.status == status
        linked = tab.eval_on_selector_all(LINKED, "els => els.map(e => e.src || e.href)")
        assert any(url.endswith(".css") for url in linked), linked
        loaded = {response.url: response.status for response in assets}
        assert {url: loaded.get(url) for url in linked} == dict.fromkeys(linked, 200)
        if status == 404:  # the browser logs the page's own status as a console error
            problems.console = [text for text in problems.console if "404" not in text]
        assert problems.all() == []
        if path.startswith("/nets/") and status == 200:
            tab.wait_for_selector(".js-plotly-plot")  # the charts' scripts ran
        if path == "/docs":
            tab.wait_for_selector(".opblock")  # Swagger UI read /openapi.json
    finally:
        tab.close()
