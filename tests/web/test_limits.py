"""The request limits (app/web/limits.py), driven at the ASGI level where a test controls every
byte and every pause; then through the app for the multipart rules, the envelope and the docs.

The same rules against a real uvicorn server: test_limits_server.py and test_bad_inputs.py.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import signal
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings
from app.web.app import create_app
from app.web.errors import COMMON_STATUSES
from app.web.limits import (
    BodyLimitMiddleware,
    Drain,
    DrainMiddleware,
    UploadAdmissionMiddleware,
    body_limit,
)
from app.web.routers import health

from .support import error_of

SMALL = Settings(
    max_body_default=1000, max_body_analyze=2000, max_body_predict=5000, body_timeout_s=0.3
)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    chunks_read: int  # how many of the client's chunks the server took

    def error(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.body)
        assert set(payload) == {"error"}
        return payload["error"]


@dataclass
class Client:
    """One request as a server hands it to an ASGI app: the body in chunks, ``gap_s`` apart;
    once the body is over, ``receive`` blocks, as uvicorn's does until the client leaves."""

    chunks: list[bytes]
    gap_s: float = 0.0
    taken: int = 0
    sent: list[Message] = field(default_factory=list)

    async def receive(self) -> Message:
        if self.taken >= len(self.chunks):
            await asyncio.sleep(3600)
        if self.gap_s:
            await asyncio.sleep(self.gap_s)
        self.taken += 1
        more = self.taken < len(self.chunks)
        return {"type": "http.request", "body": self.chunks[self.taken - 1], "more_body": more}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def reply(self) -> Reply:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        headers = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        return Reply(start["status"], headers, body, self.taken)


def scope_for(path: str, headers: dict[str, str], method: str = "POST") -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }


def reading_app(reads: bool = True) -> ASGIApp:
    """Answers 200 with the number of body bytes it read (all of them, or none)."""

    async def app(_scope: Scope, receive: Receive, send: Send) -> None:
        total = 0
        while reads:
            message = await receive()
            total += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(total).encode()})

    return app


def run_isolated(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run on a thread of its own: the browser tests' Playwright keeps an event loop
    running on the main thread for the whole session, and asyncio.run refuses to nest."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:  # handed back to the test's thread
            outcome["error"] = error

    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def call(
    app: ASGIApp, path: str, chunks: list[bytes], headers: dict[str, str], gap_s: float = 0.0
) -> Reply:
    client = Client(chunks, gap_s)

    async def run() -> None:
        await app(scope_for(path, headers), client.receive, client.send)

    run_isolated(asyncio.wait_for(run(), timeout=10))
    return client.reply()


def limited(app: ASGIApp, settings: Settings = SMALL) -> ASGIApp:
    return BodyLimitMiddleware(app, settings)


CHUNKED = {"transfer-encoding": "chunked"}


def test_each_path_has_its_limit() -> None:
    assert body_limit("/api/predict/vgg16", SMALL) == 5000
    assert body_limit("/api/predict", SMALL) == 5000
    assert body_limit("/api/analyze/check", SMALL) == 2000
    assert body_limit("/docs", SMALL) == 1000
    assert body_limit("/static/js/app.js", SMALL) == 1000


def test_a_declared_length_over_the_limit_is_refused_before_a_byte_is_read() -> None:
    reply = call(limited(reading_app()), "/api/analyze", [b"x" * 2001], {"content-length": "2001"})
    assert (reply.status, reply.error()["code"]) == (413, "payload_too_large")
    assert reply.headers["connection"] == "close"
    assert reply.chunks_read == 0


@pytest.mark.parametrize("declared", ["-1", "abc", "1e3", "١٢", " 12", "12, 13"])
def test_a_content_length_that_is_not_a_whole_number_is_a_400(declared: str) -> None:
    reply = call(limited(reading_app()), "/api/analyze", [b"{}"], {"content-length": declared})
    assert (reply.status, reply.error()["code"]) == (400, "bad_request")
    assert reply.chunks_read == 0


def test_a_chunked_body_is_cut_off_the_moment_it_passes_the_limit() -> None:
    chunks = [b"x" * 400] * 1000  # 400 KB in all, no Content-Length
    reply = call(limited(reading_app()), "/api/analyze", chunks, CHUNKED)
    assert (reply.status, reply.error()["code"]) == (413, "payload_too_large")
    assert reply.chunks_read == 6  # 2,400 bytes: the first chunk past 2,000
    assert reply.headers["connection"] == "close"


def test_a_body_at_the_limit_is_read_whole() -> None:
    reply = call(limited(reading_app()), "/api/analyze", [b"x" * 1000] * 2, CHUNKED)
    assert (reply.status, reply.body) == (200, b"2000")


def test_an_unread_body_over_the_limit_still_ends_in_413() -> None:
    """A route that answers without reading (a 404, a 405) must not let a client stream on."""
    chunks = [b"x" * 400] * 1000
    reply = call(limited(reading_app(reads=False)), "/nothing", chunks, CHUNKED)
    assert (reply.status, reply.error()["code"]) == (413, "payload_too_large")
    assert reply.chunks_read == 3  # 1,200 bytes: the first chunk past 1,000


def test_an_unread_body_under_the_limit_is_dropped_and_the_answer_kept() -> None:
    reply = call(limited(reading_app(reads=False)), "/nothing", [b"x" * 300] * 3, CHUNKED)
    assert (reply.status, reply.body) == (200, b"0")
    assert reply.chunks_read == 3
    assert "connection" not in reply.headers  # read to its end: the connection can be reused


def test_a_body_too_slow_gets_408() -> None:
    reply = call(limited(reading_app()), "/api/analyze", [b"x"] * 100, CHUNKED, gap_s=0.05)
    assert (reply.status, reply.error()["code"]) == (408, "request_timeout")
    assert reply.headers["connection"] == "close"
    assert reply.chunks_read < 10  # 0.3 s at 0.05 s a chunk


def test_a_request_without_a_body_is_never_timed() -> None:
    """After the body, a response may wait on receive() for a disconnect: no deadline then."""

    async def late_app(_scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await asyncio.sleep(0.5)  # past the 0.3 s body timeout, on purpose
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    reply = call(limited(late_app), "/healthz", [b""], {})
    assert reply.status == 204


# Through the whole app: the route's own error handlers render a refusal raised in receive().


@pytest.fixture(scope="module")
def small_client() -> Iterator[TestClient]:
    with TestClient(create_app(SMALL)) as client:
        yield client


def test_the_app_renders_a_streamed_refusal_as_the_envelope(small_client: TestClient) -> None:
    body = json.dumps({"name": "x" * 3000}).encode()
    response = small_client.post(
        "/api/analyze",
        content=iter([body[:1000], body[1000:]]),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert response.headers["connection"] == "close"
    assert response.headers["content-security-policy"]


def test_docs_and_static_are_covered_too(small_client: TestClient) -> None:
    for path in ("/docs", "/openapi.json", "/static/js/app.js"):
        response = small_client.request("GET", path, content=b"x" * 1001)
        assert response.status_code == 413, path
        assert error_of(response)["code"] == "payload_too_large"


# Concurrent uploads.


def test_uploads_past_the_capacity_get_503_with_retry_after() -> None:
    release = asyncio.Event()

    async def slow_upload(_scope: Scope, _receive: Receive, send: Send) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    app = UploadAdmissionMiddleware(slow_upload, Settings(max_concurrent_uploads=2))

    async def scenario() -> list[Reply]:
        clients = [Client([b""]) for _ in range(4)]
        paths = ["/api/predict/a", "/api/predict", "/api/predict/a/features", "/api/compare"]
        methods = ["POST", "POST", "POST", "GET"]
        tasks = [
            asyncio.create_task(app(scope_for(p, {}, m), c.receive, c.send))
            for p, m, c in zip(paths, methods, clients, strict=True)
        ]
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(*tasks)
        return [client.reply() for client in clients]

    first, second, third, other = run_isolated(asyncio.wait_for(scenario(), 10))
    assert [first.status, second.status, other.status] == [200, 200, 200]
    assert third.status == 503
    assert third.error()["code"] == "overloaded"
    assert third.headers["retry-after"] == str(third.error()["retry_after_s"])


# Shutdown.


def test_after_shutdown_begins_new_requests_get_503() -> None:
    drain = Drain(grace_s=5)
    app = DrainMiddleware(reading_app(), drain)
    drain.begin()
    reply = call(app, "/healthz", [b""], {})
    assert (reply.status, reply.error()["code"]) == (503, "shutting_down")
    assert reply.headers["retry-after"] == "2"
    assert reply.headers["connection"] == "close"


def test_requests_in_flight_finish_or_get_503_when_the_grace_period_ends() -> None:
    drain = Drain(grace_s=0.2)

    async def app(scope: Scope, _receive: Receive, send: Send) -> None:
        await asyncio.sleep(0.05 if scope["path"] == "/quick" else 30)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    drained = DrainMiddleware(app, drain)

    async def scenario() -> tuple[Reply, Reply, float]:
        quick, stuck = Client([b""]), Client([b""])
        loop = asyncio.get_running_loop()
        started = loop.time()
        tasks = [
            asyncio.create_task(drained(scope_for(path, {}, "GET"), c.receive, c.send))
            for path, c in (("/quick", quick), ("/stuck", stuck))
        ]
        await asyncio.sleep(0.01)
        drain.begin()
        await asyncio.gather(*tasks)
        return quick.reply(), stuck.reply(), loop.time() - started

    quick, stuck, took = run_isolated(asyncio.wait_for(scenario(), 10))
    assert (quick.status, quick.body) == (200, b"ok")
    assert (stuck.status, stuck.error()["code"]) == (503, "shutting_down")
    assert took < 5  # answered at the end of the grace period, not after the 30 s run


def test_sigterm_begins_the_drain_then_reaches_the_servers_handler() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda sig, _: received.append(sig))
    try:
        drain = Drain(grace_s=1)
        with drain.on_signals():
            signal.raise_signal(signal.SIGTERM)
        assert drain.draining
        assert received == [signal.SIGTERM]
        signal.raise_signal(signal.SIGTERM)  # the handler is the server's again
        assert received == [signal.SIGTERM, signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_healthz_answers_on_the_event_loop() -> None:
    """Not in the threadpool, where it would queue behind uploads holding worker threads."""
    assert inspect.iscoroutinefunction(health.healthz)


# Multipart uploads: 1 file, 4 fields, 16 KiB per field, and a boundary from RFC 2046.


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def upload(client: TestClient, body: bytes, content_type: str) -> Any:
    return client.post(
        "/api/predict/alexnet-lecture", content=body, headers={"content-type": content_type}
    )


FORM = "multipart/form-data; boundary=b0undary"


@pytest.mark.parametrize(
    ("parts", "status", "location"),
    [
        ([("image", "a.jpg", b"1"), ("image", "b.jpg", b"2")], 422, "body"),
        ([("image", "a.jpg", b"1"), ("other", "b.jpg", b"2")], 422, "body"),
        ([("image", "a.jpg", b"1")] + [(f"f{i}", None, b"v") for i in range(5)], 422, "body"),
        ([("note", None, b"x" * (16 * 1024 + 1)), ("image", "a.jpg", b"1")], 413, None),
    ],
    ids=["two images", "a second file", "five fields", "a field over 16 KiB"],
)
def test_an_upload_holds_one_file_and_a_few_small_fields(
    predict_client: TestClient,
    parts: list[tuple[str, str | None, bytes]],
    status: int,
    location: str | None,
) -> None:
    response = upload(predict_client, multipart(parts), FORM)
    assert response.status_code == status, response.text
    error = error_of(response)
    if location is not None:
        assert [issue["location"] for issue in error["issues"]] == [location]


def test_four_small_fields_beside_the_picture_are_fine(
    predict_client: TestClient, photo_jpeg: bytes
) -> None:
    parts = [(f"f{i}", None, b"v" * 16 * 1024) for i in range(4)]
    response = upload(predict_client, multipart([*parts, ("image", None, photo_jpeg)]), FORM)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=" + "a" * 71,
        'multipart/form-data; boundary="ends-in-space "',
        'multipart/form-data; boundary="<script>"',
        "multipart/form-data; boundary=\x7f\x7f",
        "multipart/form-data; boundary=" + "=" * 60 + ";" * 300,
        'multipart/form-data; boundary="' + '\\"' * 2000 + '"',
    ],
    ids=["71 characters", "a trailing space", "angle brackets", "DEL", "long header", "quotes"],
)
def test_a_boundary_outside_rfc_2046_is_refused_before_parsing(
    predict_client: TestClient, content_type: str
) -> None:
    response = upload(predict_client, b"--x\r\n", content_type)
    assert response.status_code == 422
    [issue] = error_of(response)["issues"]
    assert issue["location"] == "header.content-type"


# The envelope echoes nothing hostile, and the docs declare every status.


@pytest.mark.parametrize(
    "net_id", ["<script>alert(1)</script>", "x" * 5000, "a b", "%3Cimg%20src%3Dx%3E"]
)
def test_an_unknown_id_that_is_not_id_shaped_is_not_echoed(client: TestClient, net_id: str) -> None:
    response = client.get("/api/architectures/" + net_id)
    assert response.status_code in (404, 422)
    assert net_id not in response.text
    assert "<" not in response.text


def test_an_unknown_id_shaped_like_one_is_named(client: TestClient) -> None:
    error = error_of(client.get("/api/compare", params={"a": "lenet", "b": "vgg16"}))
    assert (error["code"], error["id"]) == ("unknown_net", "lenet")


@pytest.mark.parametrize("key", ["k" * 60_000, "<b>" * 20_000])
def test_user_text_in_spec_issues_is_cut_short(client: TestClient, key: str) -> None:
    spec = {"name": "x", "input": {"height": 8, "width": 8, "channels": 1}, "layers": []}
    spec["layers"] = [{"kind": "relu", "name": "n" * 5000, key: 1}]
    response = client.post("/api/analyze", json=spec)
    assert response.status_code == 422
    assert len(response.content) < 4000
    issues = error_of(response)["issues"]
    assert issues
    for issue in issues:
        assert len(issue["field"] or "") <= 64
        assert len(issue["name"] or "") <= 64


def issues_located(client: TestClient, layers: list[dict[str, Any]]) -> tuple[set[Any], str]:
    spec = {"name": "x", "input": {"height": 8, "width": 8, "channels": 1}, "layers": layers}
    response = client.post("/api/analyze", json=spec)
    assert response.status_code == 422
    located = {(i["index"], i["name"], i["field"]) for i in error_of(response)["issues"]}
    return located, response.text


def test_spec_issues_repeat_a_layer_name_only_when_it_is_plain(client: TestClient) -> None:
    located, text = issues_located(
        client,
        [
            {"kind": "conv", "name": "conv 1 (3x3)", "out_channels": 4, "kernel": 99},
            {
                "kind": "conv",
                "name": "<img src=x onerror=alert(1)>",
                "out_channels": 4,
                "kernel": 99,
            },
        ],
    )
    assert located == {(0, "conv 1 (3x3)", "kernel"), (1, None, "kernel")}
    assert "onerror" not in text


@pytest.mark.parametrize(
    "name",
    ["evil\u202egpj.exe", "a\u2028b", "zero\u200bwidth", "tab\there", "private\ue000"],
    ids=["bidi override", "line separator", "zero width", "control", "private use"],
)
def test_spec_issues_do_not_repeat_invisible_or_spoofing_characters(
    client: TestClient, name: str
) -> None:
    layer = {"kind": "conv", "name": name, "out_channels": 4, "kernel": 99}
    located, text = issues_located(client, [layer])
    assert located == {(0, None, "kernel")}
    assert name not in text


def test_a_lone_surrogate_in_a_spec_is_refused_as_invalid_json(client: TestClient) -> None:
    """Valid JSON syntax, but not Unicode: no UTF-8 answer could carry it back."""
    body = b'{"name": "x", "input": {"height": 8, "width": 8, "channels": 1}, '
    body += b'"layers": [{"kind": "relu", "name": "a\\ud800b"}]}'
    response = client.post(
        "/api/analyze", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_json"
    assert "surrogate" in error_of(response)["message"]


def test_spec_issues_repeat_an_unknown_key_only_when_it_is_plain(client: TestClient) -> None:
    layer = {"kind": "relu", "name": "relu", "plain_key": 1, "<b>key</b>": 1, "it's": 1}
    located, text = issues_located(client, [layer])
    assert sorted(located, key=str) == [(0, "relu", "plain_key"), (0, "relu", None)]
    assert "<b>" not in text
    assert "it's" not in text


def test_a_missing_static_file_is_not_named(client: TestClient) -> None:
    response = client.get("/static/%3Cscript%3Ealert(1)%3C%2Fscript%3E" + "x" * 3000)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert "script" not in response.text
    assert len(response.content) < 500


def test_every_operation_declares_every_status_it_can_return(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in (*COMMON_STATUSES, 422 if operation.get("parameters") else 400):
                answer = responses.get(str(status))
                assert answer is not None, (method, path, status)
                assert answer["content"]["application/json"]["schema"] == envelope
    assert "HTTPValidationError" not in json.dumps(schema)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "x", "input": NaN, "layers": []}',
        b'{"name": "x", "input": {"height": 1e400}, "layers": []}',
        b'{"name": ' + b"9" * 5000 + b"}",
        b"[" * 20_000 + b"]" * 20_000,
    ],
    ids=["NaN", "1e400", "5000 digits", "deep"],
)
def test_a_custom_link_with_hostile_json_is_a_page_saying_so(
    client: TestClient, raw: bytes
) -> None:
    import base64

    param = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response = client.get("/custom", params={"spec": param})
    assert response.status_code == 200
    assert "not valid JSON" in response.text or "nested too deeply" in response.text
