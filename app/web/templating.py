"""The Jinja2 environment: autoescaped templates, hashed asset URLs and number formats.

Formats only present numbers the calculator computed; nothing here derives a figure.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from app.core.numbers import exact_count, si_count, signed_si_count
from app.specs import Volume
from app.web.assets import Assets
from app.web.samples import load_samples

TIMES = "\N{MULTIPLICATION SIGN}"
VERDICT_MARKS = {
    "exact": "\N{CHECK MARK}",
    "rounded": "\N{ALMOST EQUAL TO}",
    "differs": "\N{NOT EQUAL TO}",
    "context": "\N{INFORMATION SOURCE}",
}


def count(value: int | None) -> str:
    return "—" if value is None else exact_count(value)


def signed(value: int) -> str:
    return f"{value:+,}" if value else "0"


def si(value: int) -> Markup:
    """A count with its SI prefix (app/core/numbers.py), the exact count on hover and for
    machines: ``<data value="642000" title="642,000">642 K</data>``."""
    return Markup('<data value="{0}" title="{1}">{2}</data>').format(
        value, exact_count(value), si_count(value)
    )


def signed_si(value: int) -> Markup:
    """A difference with its SI prefix (+1.2 M), the exact difference on hover."""
    return Markup('<data value="{0}" title="{1}">{2}</data>').format(
        value, signed(value), signed_si_count(value)
    )


def volume(value: Volume) -> str:
    """W x H x D, the lecture's order."""
    return f"{value.width}{TIMES}{value.height}{TIMES}{value.channels}"


def percent(value: float | None, decimals: int = 1) -> str:
    return "—" if value is None else f"{value:.{decimals}f} %"


def share(value: float) -> str:
    return f"{value * 100:.1f} %"


def ratio(value: float | None) -> str:
    return "—" if value is None else f"{TIMES}{value:,.2f}"


# A static import of one of our modules, once assets.py has rewritten it to its hashed URL.
STATIC_IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*)["'](/static/[^"']+\.js)["']""")


class ModulePreloads:
    """``<link rel="modulepreload">`` for an ES module and every module it imports, however
    deep, so the browser fetches the whole graph at once instead of one level per round trip."""

    def __init__(self, assets: Assets) -> None:
        self.assets = assets
        self._links: dict[str, Markup] = {}

    def urls(self, path: str) -> list[str]:
        first = self.assets.url(path)
        found = [first]
        queue = [first]
        while queue:
            asset = self.assets.find(queue.pop(0).removeprefix("/static/"))
            if asset is None:
                continue
            for url in STATIC_IMPORT.findall(asset.body.decode("utf-8")):
                if url not in found:
                    found.append(url)
                    queue.append(url)
        return found

    def __call__(self, path: str) -> Markup:
        if path not in self._links:
            links = (f'<link rel="modulepreload" href="{escape(url)}">' for url in self.urls(path))
            self._links[path] = Markup("\n".join(links))
        return self._links[path]


def make_templates(directory: Path, assets: Assets) -> Jinja2Templates:
    templates = Jinja2Templates(directory=directory)
    env = templates.env
    env.globals["asset"] = assets.url
    env.globals["module_preloads"] = ModulePreloads(assets)
    env.globals["verdict_marks"] = VERDICT_MARKS
    env.globals["samples"] = load_samples(assets.root)
    env.filters.update(
        count=count,
        signed=signed,
        si=si,
        si_text=si_count,
        signed_si=signed_si,
        volume=volume,
        percent=percent,
        share=share,
        ratio=ratio,
    )
    env.trim_blocks = True
    env.lstrip_blocks = True
    return templates
