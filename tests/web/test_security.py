"""Security headers everywhere; pages with no inline script, so the strict policy holds."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from app.web.catalog import encode_spec
from app.web.security import DOCS_POLICY, PAGE_POLICY

PAGES = ["/", "/nets/alexnet-lecture", "/compare", "/custom", "/lecture", "/nets/vgg19-bn"]


class ScriptAudit(HTMLParser):
    """Collects what a strict script policy would block: inline scripts and on* attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.script_sources: list[str] = []
        self.inline_scripts = 0
        self.handlers: list[str] = []
        self.javascript_urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            if values.get("src"):
                self.script_sources.append(values["src"] or "")
            else:
                self.inline_scripts += 1
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        self.javascript_urls += [
            value or ""
            for name, value in attrs
            if name in {"href", "src", "action"}
            if (value or "").strip().lower().startswith("javascript:")
        ]


@pytest.mark.parametrize("path", [*PAGES, "/api/architectures", "/healthz", "/nope"])
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["content-security-policy"] == PAGE_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


def test_the_page_policy_is_the_strict_one() -> None:
    assert "script-src 'self';" in PAGE_POLICY
    assert "unsafe-eval" not in PAGE_POLICY
    assert "default-src 'none'" in PAGE_POLICY
    assert "frame-ancestors 'none'" in PAGE_POLICY


def test_only_the_docs_allow_an_inline_script(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == DOCS_POLICY
    assert "'unsafe-inline'" in DOCS_POLICY.split("script-src")[1].split(";")[0]
    assert "cdn" not in response.text.lower()


@pytest.mark.parametrize("path", PAGES)
def test_pages_run_no_inline_script(client: TestClient, path: str) -> None:
    audit = ScriptAudit()
    audit.feed(client.get(path).text)
    assert audit.inline_scripts == 0
    assert audit.handlers == []
    assert audit.javascript_urls == []
    assert all(src.startswith("/static/") for src in audit.script_sources)


def test_user_text_is_inert(client: TestClient) -> None:
    name = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    spec = {
        "name": name,
        "input": {"height": 8, "width": 8, "channels": 1},
        "layers": [{"kind": "relu", "name": name[:64]}],
    }
    html = client.get("/custom", params={"spec": encode_spec(spec)}).text
    audit = ScriptAudit()
    audit.feed(html)
    assert audit.inline_scripts == 0
    assert audit.handlers == []
    assert "&lt;script&gt;alert" in html
