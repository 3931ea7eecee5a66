"""The server-rendered pages. Each reads the same catalog the API serves, and carries the JSON
its charts draw as inert data (a ``data-json`` attribute, never a script): the same text as the
API's answer, there from the first byte, so the first chart waits for no request.

The built-in pages (home, each net, each pair of built-in nets, the lecture page and each of its
verdict filters, the editor opened on a built-in spec, each net's practice) depend on built-in
data only, which never changes while the server runs: each is rendered once, in the threadpool,
and kept gzipped in a bounded LRU cache (``PageCache``). Their routes are ``async``, so a cached
page is answered on the event loop without a thread hop: it stays fast while ONNX Runtime holds
every core. The
rendered bytes depend on nothing in the request (links are relative, the host is never used).
A custom spec's page depends on the user's input and is rendered per request.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from functools import cache, partial
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from app.core.calculator import builtin_table
from app.core.errors import SpecInvalid, SpecIssue
from app.core.table import Table
from app.core.timeline import timeline
from app.settings import Settings
from app.specs import builtin_registry
from app.specs.fields import layer_kind_fields
from app.web.catalog import (
    analyze_cached,
    comparison,
    decode_spec,
    editable_spec,
    encode_spec,
    families,
    first_layers_for,
    lecture_entries,
    lecture_skips,
    served_key,
    stacks_of,
    summaries,
    summary_of,
    table_json,
    weights_now,
)
from app.web.deps import NetId, SettingsDep, SpecBody, TemplatesDep
from app.web.errors import bounded_issues
from app.web.responses import HTML, Encoded, encoded_response
from app.web.routers import practice, whatif
from app.web.weights import ServedWeights

router = APIRouter(include_in_schema=False)

# The lecture's own comparison opens the compare page; the custom editor starts from its AlexNet.
DEFAULT_A, DEFAULT_B = "alexnet-lecture", "zfnet-lecture"
DEFAULT_CUSTOM = "alexnet-lecture"
# Settings always shown on the compare page; any other shows only where the two nets differ.
PRIMARY_SETTINGS = ("filters", "units", "kernel", "stride", "padding", "output_size")
VERDICTS = ("exact", "rounded", "differs", "context")
BASES = ("checked", "defined")
# Built-in pages kept rendered: with 13 nets there are 1 home + 13 nets + 169 pairs + 5 lecture
# filters + 13 editors + 13 practice pages = 214, about 8 KB each gzipped; beyond this many, the
# least recently used goes (a registry with more nets stays bounded too).
PAGE_CACHE_SIZE = 256

OptionalId = Annotated[str | None, Query(max_length=64)]
PageKey = tuple[str | None, ...]
Served = dict[str, ServedWeights]


class PageCache:
    """Rendered pages, gzipped and hashed (their ETag), by key; at most ``maxsize``, least
    recently used out first.

    Only ever touched from the event loop (the async routes), so it needs no lock.
    """

    def __init__(self, maxsize: int = PAGE_CACHE_SIZE) -> None:
        self.maxsize = maxsize
        self._pages: OrderedDict[PageKey, Encoded] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pages)

    def __contains__(self, key: PageKey) -> bool:
        return key in self._pages

    def get(self, key: PageKey) -> Encoded | None:
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
        return page

    def put(self, key: PageKey, page: Encoded) -> None:
        self._pages[key] = page
        self._pages.move_to_end(key)
        while len(self._pages) > self.maxsize:
            self._pages.popitem(last=False)


def page_cache(app: FastAPI) -> PageCache:
    """The app's page cache (one per app: each has its own templates and settings)."""
    cache: PageCache | None = getattr(app.state, "page_cache", None)
    if cache is None:
        cache = app.state.page_cache = PageCache()
    return cache


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def _render(templates: Jinja2Templates, name: str, context: dict[str, Any]) -> str:
    return templates.get_template(name).render(context)


def _encode_page(render: Callable[[], str], *, keep_plain: bool) -> Encoded:
    return Encoded.of(render().encode("utf-8"), keep_plain=keep_plain)


async def _page_bytes(app: FastAPI, key: PageKey, render: Callable[[], str]) -> Encoded:
    """The page under ``key``, gzipped and hashed; rendered in the threadpool the first time
    only. Only the gzip is kept (a client without gzip gets it unzipped)."""
    cache = page_cache(app)
    page = cache.get(key)
    if page is None:
        page = await run_in_threadpool(partial(_encode_page, render, keep_plain=False))
        cache.put(key, page)
    return page


async def _cached(request: Request, key: PageKey, render: Callable[[], str]) -> Response:
    return encoded_response(await _page_bytes(request.app, key, render), HTML, request)


async def _uncached(request: Request, render: Callable[[], str]) -> Response:
    """A page rendered for this request (a user's spec): with an ETag all the same, so a
    reload of an unchanged page is a 304."""
    page = await run_in_threadpool(partial(_encode_page, render, keep_plain=True))
    return encoded_response(page, HTML, request)


def _served(app: FastAPI, ids: list[str]) -> Served:
    """What each net's model serves now: pages that say so are kept per state (a build that
    finishes while the server runs changes them), so this is part of their cache key."""
    settings: Settings = app.state.settings
    return {net_id: weights_now(settings.models_dir, net_id) for net_id in ids}


def _home(templates: Jinja2Templates, served: Served) -> str:
    data = timeline()
    context = {
        "families": families(),
        "served": served,
        "timeline": data,
        "timeline_json": data.model_dump_json(),
        "count": len(summaries()),
    }
    return _render(templates, "home.html", context)


@router.get("/favicon.ico")
async def favicon(request: Request) -> Response:
    """Where a browser or a tool looks for the icon without reading the page's <link>."""
    url: str = request.app.state.assets.url("img/favicon.svg")
    return RedirectResponse(url, status_code=301)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    templates = _templates(request)
    served = _served(request.app, builtin_registry().ids())
    return await _cached(request, ("home", *served_key(served)), lambda: _home(templates, served))


def _net(
    templates: Jinja2Templates,
    settings: Settings,
    net_id: str,
    served: Served,
    state: dict[str, list[str]] | None = None,
) -> str:
    context = {
        "spec": builtin_registry().get(net_id),
        "table": builtin_table(net_id),
        "table_json": table_json(net_id).decode("utf-8"),
        "summary": summary_of(net_id),
        "served": served[net_id],
        "whatif": whatif.page_context(net_id, state, settings.spec_limits, PRIMARY_SETTINGS),
        "stacks": stacks_of(net_id),
        "first_layers": first_layers_for(net_id),
    }
    return _render(templates, "net.html", context)


def _state(request: Request) -> dict[str, list[str]]:
    params = request.query_params
    return {key: params.getlist(key) for key in params if key in whatif.STATE_KEYS}


@router.get("/nets/{net_id}", response_class=HTMLResponse)
async def net_page(net_id: NetId, request: Request) -> Response:
    """The net; with what-if parameters (``?preset=``, ``?remove_pools=`` ...), the edited net
    beside it, rendered per request."""
    builtin_registry().get(net_id)  # an unknown id: 404 naming the known ones
    templates = _templates(request)
    settings: Settings = request.app.state.settings
    served = _served(request.app, [net_id])
    state = _state(request)
    if state:
        return await _uncached(request, lambda: _net(templates, settings, net_id, served, state))
    key = ("net", net_id, *served_key(served))
    return await _cached(request, key, lambda: _net(templates, settings, net_id, served))


@router.get("/nets/{net_id}/whatif", response_class=HTMLResponse)
def whatif_fragment(net_id: NetId, request: Request, templates: TemplatesDep) -> Response:
    """The what-if results alone, as an HTML fragment from the same template: the net page
    swaps it in without a reload. A what-if that cannot be computed is a fragment too (200):
    the sentence saying why, for the page to show at the form; GET /api/whatif answers 422."""
    settings: Settings = request.app.state.settings
    context = whatif.page_context(net_id, _state(request), settings.spec_limits, PRIMARY_SETTINGS)
    html = _render(templates, "partials/whatif_fragment.html", {"w": context})
    return HTMLResponse(html)


def _compare(templates: Jinja2Templates, a: str, b: str, served: Served) -> str:
    result = comparison(a, b)
    context = {
        "a": a,
        "b": b,
        "result": result,
        "comparison_json": result.model_dump_json(),
        "table_a_json": table_json(a).decode("utf-8"),
        "table_b_json": table_json(b).decode("utf-8"),
        "nets": summaries(),
        "primary": PRIMARY_SETTINGS,
        "summary_a": summary_of(a),
        "summary_b": summary_of(b),
        "served_a": served[a],
        "served_b": served[b],
        "stacks_a": stacks_of(a),
        "stacks_b": stacks_of(b) if b != a else [],
    }
    return _render(templates, "compare.html", context)


@router.get("/compare", response_class=HTMLResponse)
async def compare_page(request: Request, a: OptionalId = None, b: OptionalId = None) -> Response:
    a = a or DEFAULT_A
    b = b or (DEFAULT_B if a != DEFAULT_B else DEFAULT_A)
    registry = builtin_registry()
    registry.get(a)  # unknown ids: the same 404 as comparison(a, b) gives
    registry.get(b)
    templates = _templates(request)
    served = _served(request.app, [a, b])
    key = ("compare", a, b, *served_key(served))
    return await _cached(request, key, lambda: _compare(templates, a, b, served))


def _editor_spec(raw: object) -> dict[str, Any]:
    """The three parts the editor shows; a link's other keys would be invisible, so they go."""
    if not isinstance(raw, dict) or not isinstance(raw.get("layers"), list):
        raise ValueError("the link's spec is not an object with a list of layers")
    return {key: raw[key] for key in ("name", "input", "layers") if key in raw}


def _issues_by_layer(issues: list[SpecIssue]) -> tuple[dict[int, list[SpecIssue]], list[SpecIssue]]:
    by_layer: dict[int, list[SpecIssue]] = {}
    general = []
    for issue in issues:
        if issue.index is None:
            general.append(issue)
        else:
            by_layer.setdefault(issue.index, []).append(issue)
    return by_layer, general


def _layer_settings(layer: object) -> list[tuple[str, str]]:
    """A layer's settings as (field, value) text, for the list the page shows before the form
    (and without JavaScript): kind and name are shown apart."""
    if not isinstance(layer, dict):
        return [("", json.dumps(layer, ensure_ascii=False))]
    return [
        (str(key), json.dumps(value, ensure_ascii=False))
        for key, value in layer.items()
        if key not in {"kind", "name"}
    ]


@cache
def _layer_kinds_json() -> str:
    """Each layer kind's fields (type, bounds, default), from which the editor builds its form."""
    kinds = [entry.model_dump(exclude_none=True) for entry in layer_kind_fields()]
    return json.dumps(kinds, separators=(",", ":"))


def _custom(templates: Jinja2Templates, settings: Settings, start: str, spec: str | None) -> str:
    load_error = None
    editor = editable_spec(builtin_registry().get(start))
    if spec is not None:
        try:
            editor = _editor_spec(decode_spec(spec, settings.max_body_analyze))
        except ValueError as error:
            load_error = str(error)
    table: Table | None = None
    issues: list[SpecIssue] = []
    try:
        table = analyze_cached(editor, settings.spec_limits)
    except SpecInvalid as error:
        issues = error.issues
    by_layer, general = _issues_by_layer(issues)
    context = {
        "editor": editor,
        "editor_json": json.dumps(editor, ensure_ascii=False, separators=(",", ":")),
        "layer_kinds": layer_kind_fields(),
        "layer_kinds_json": _layer_kinds_json(),
        "layer_settings": [_layer_settings(layer) for layer in editor["layers"]],
        "table": table,
        "issues_by_layer": by_layer,
        "general_issues": general,
        "load_error": load_error,
        "start": start,
        "nets": summaries(),
        "spec_param": encode_spec(editor),
    }
    return _render(templates, "custom.html", context)


@router.get("/custom", response_class=HTMLResponse)
async def custom_page(
    request: Request,
    start: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    spec: Annotated[str | None, Query()] = None,
) -> Response:
    """A built-in spec in the editor is a built-in page; a user's ``?spec=`` is rendered per
    request (in the threadpool: decoding and analysing it is work)."""
    start = start or DEFAULT_CUSTOM
    builtin_registry().get(start)  # an unknown id: 404 naming the known ones
    templates = _templates(request)
    settings: Settings = request.app.state.settings
    if spec is None:
        return await _cached(
            request, ("custom", start), lambda: _custom(templates, settings, start, None)
        )
    return await _uncached(request, lambda: _custom(templates, settings, start, spec))


@router.post("/custom/table", response_class=HTMLResponse)
def custom_table(templates: TemplatesDep, settings: SettingsDep, spec: SpecBody) -> Response:
    """The custom page's table and totals as an HTML fragment, from the same template."""
    table = analyze_cached(spec, settings.spec_limits)
    return HTMLResponse(_render(templates, "partials/custom_results.html", {"table": table}))


def _practice(
    templates: Jinja2Templates, settings: Settings, net: str | None, spec: str | None
) -> str:
    if spec is None:
        assert net is not None
        context = practice.page_context(
            practice.practice_of(net, None, settings.spec_limits), net, None
        )
        return _render(templates, "practice.html", context)
    try:
        raw = decode_spec(spec, settings.max_body_analyze)
        found = practice.practice_of(None, raw, settings.spec_limits)
    except SpecInvalid as error:
        problems = "; ".join(str(issue) for issue in bounded_issues(error.issues))
        context = practice.page_error_context(spec, f"the spec has problems: {problems}")
    except ValueError as error:
        context = practice.page_error_context(spec, str(error))
    else:
        context = practice.page_context(found, None, spec)
    return _render(templates, "practice.html", context)


@router.get("/practice", response_class=HTMLResponse)
async def practice_page(
    request: Request, net: OptionalId = None, spec: Annotated[str | None, Query()] = None
) -> Response:
    """A built-in net (alexnet-lecture unless ``net`` names another) is a built-in page; a
    user's ``?spec=`` (as /custom links carry it) is rendered per request."""
    templates = _templates(request)
    settings: Settings = request.app.state.settings
    if spec is not None:
        return await _uncached(request, lambda: _practice(templates, settings, None, spec))
    net = net or practice.DEFAULT_NET
    builtin_registry().get(net)  # an unknown id: 404 naming the known ones
    render = partial(_practice, templates, settings, net, None)
    return await _cached(request, ("practice", net), render)


def _lecture(templates: Jinja2Templates, verdict: str | None) -> str:
    entries = lecture_entries()
    counts = {name: sum(1 for entry in entries if entry.verdict == name) for name in VERDICTS}
    figures = [entry for entry in entries if entry.basis is not None]
    bases = {name: sum(1 for entry in figures if entry.basis == name) for name in BASES}
    checked = {
        name: sum(1 for e in figures if e.basis == "checked" and e.verdict == name)
        for name in VERDICTS
    }
    shown = [entry for entry in entries if verdict in (None, entry.verdict)]
    context = {
        "entries": shown,
        "counts": counts,
        "bases": bases,
        "checked": checked,
        "verdict": verdict,
        "total": len(entries),
        "refs": len({entry.ref for entry in entries}),
        "skips": lecture_skips() if verdict is None else (),
        "timeline_source": timeline().source,
    }
    return _render(templates, "lecture.html", context)


@router.get("/lecture", response_class=HTMLResponse)
async def lecture_page(request: Request, verdict: OptionalId = None) -> Response:
    templates = _templates(request)
    render = partial(_lecture, templates, verdict)
    if verdict is None or verdict in VERDICTS:
        return await _cached(request, ("lecture", verdict), render)
    return await _uncached(request, render)  # any other filter: no row matches, not kept


async def prerender(app: FastAPI) -> int:
    """Render every built-in page but the pairs into the cache (the lecture's pair included),
    so not even a first visit renders; about a second of one core. Returns the pages kept."""
    templates: Jinja2Templates = app.state.templates
    settings: Settings = app.state.settings
    served = _served(app, builtin_registry().ids())
    pair = {net_id: served[net_id] for net_id in (DEFAULT_A, DEFAULT_B)}
    pages: list[tuple[PageKey, Callable[[], str]]] = [
        (("home", *served_key(served)), partial(_home, templates, served)),
        (
            ("compare", DEFAULT_A, DEFAULT_B, *served_key(pair)),
            partial(_compare, templates, DEFAULT_A, DEFAULT_B, pair),
        ),
    ]
    pages += [(("lecture", v), partial(_lecture, templates, v)) for v in (None, *VERDICTS)]
    for net_id in builtin_registry().ids():
        one = {net_id: served[net_id]}
        pages.append(
            (("net", net_id, *served_key(one)), partial(_net, templates, settings, net_id, one))
        )
        pages.append((("custom", net_id), partial(_custom, templates, settings, net_id, None)))
        pages.append((("practice", net_id), partial(_practice, templates, settings, net_id, None)))
    for key, render in pages:
        await _page_bytes(app, key, render)
    return len(pages)
