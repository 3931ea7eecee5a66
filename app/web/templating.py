"""The Jinja2 environment: autoescaped templates, hashed asset URLs and number formats.

Formats only present numbers the calculator computed; nothing here derives a figure.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from app.core.formatting import millions
from app.specs import Volume
from app.web.assets import Assets

TIMES = "\N{MULTIPLICATION SIGN}"
VERDICT_MARKS = {
    "exact": "\N{CHECK MARK}",
    "rounded": "\N{ALMOST EQUAL TO}",
    "differs": "\N{NOT EQUAL TO}",
    "context": "\N{INFORMATION SOURCE}",
}


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def signed(value: int) -> str:
    return f"{value:+,}" if value else "0"


def giga(value: int) -> str:
    return f"{value / 1e9:,.2f} G"


def volume(value: Volume) -> str:
    """W x H x D, the lecture's order."""
    return f"{value.width}{TIMES}{value.height}{TIMES}{value.channels}"


def percent(value: float | None, decimals: int = 1) -> str:
    return "—" if value is None else f"{value:.{decimals}f} %"


def share(value: float) -> str:
    return f"{value * 100:.1f} %"


def ratio(value: float | None) -> str:
    return "—" if value is None else f"{TIMES}{value:,.2f}"


def make_templates(directory: Path, assets: Assets) -> Jinja2Templates:
    templates = Jinja2Templates(directory=directory)
    env = templates.env
    env.globals["asset"] = assets.url
    env.globals["verdict_marks"] = VERDICT_MARKS
    env.filters.update(
        count=count,
        signed=signed,
        millions=millions,
        giga=giga,
        volume=volume,
        percent=percent,
        share=share,
        ratio=ratio,
    )
    env.trim_blocks = True
    env.lstrip_blocks = True
    return templates
