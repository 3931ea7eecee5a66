"""Live inference over HTTP: upload -> top-5 and feature maps, every refusal as the envelope.

The app serves the shared test repository (tests/conftest.py): alexnet-lecture and
zfnet-lecture, untrained. Every other built-in net is known but not built.
"""

from __future__ import annotations

import base64
import inspect
import io
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import starlette.formparsers
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from PIL import Image

from app.core.calculator import builtin_table
from app.settings import Settings
from app.specs import builtin_registry
from app.web import app as app_module
from app.web.app import create_app
from app.web.routers.predict import router as predict_router

from .support import error_of

PREDICT_FIELDS = {"id", "top5", "provider", "weights", "timings_ms"}
TOP_FIELDS = {"rank", "index", "label", "probability"}
TIMING_FIELDS = {"decode", "preprocess", "inference", "total"}
NOT_BUILT = "vgg11"  # known, but not in the test repository
CPU = "CPUExecutionProvider"


def _upload(data: bytes, filename: str = "picture.jpg") -> dict[str, Any]:
    return {"files": {"image": (filename, data, "application/octet-stream")}}


def _check_top5(answer: dict[str, Any], net_id: str) -> None:
    assert set(answer) == PREDICT_FIELDS  # no served_by: only the ray backend says who ran it
    assert answer["id"] == net_id
    assert answer["weights"] == "untrained"  # the lecture's nets have no published weights
    assert answer["provider"] == CPU
    assert set(answer["timings_ms"]) >= TIMING_FIELDS  # the service may add more, e.g. a queue wait
    assert answer["timings_ms"]["total"] >= answer["timings_ms"]["inference"] > 0
    top5 = answer["top5"]
    assert [entry["rank"] for entry in top5] == [1, 2, 3, 4, 5]
    assert all(set(entry) == TOP_FIELDS for entry in top5)
    probabilities = [entry["probability"] for entry in top5]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0 < p < 1 for p in probabilities)
    assert len({entry["label"] for entry in top5}) == 5
    assert len({entry["index"] for entry in top5}) == 5


def test_an_upload_comes_back_as_a_sorted_top5(
    predict_client: TestClient, upload: tuple[str, bytes]
) -> None:
    kind, data = upload
    response = predict_client.post("/api/predict/alexnet-lecture", **_upload(data))
    assert response.status_code == 200, f"{kind}: {response.text}"
    _check_top5(response.json(), "alexnet-lecture")


def test_two_nets_answer_for_one_upload_in_the_order_asked(
    predict_client: TestClient, photo_jpeg: bytes
) -> None:
    ids = ["zfnet-lecture", "alexnet-lecture"]
    response = predict_client.post(
        "/api/predict", params={"ids": ",".join(ids)}, **_upload(photo_jpeg)
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [result["id"] for result in results] == ids
    for result, net_id in zip(results, ids, strict=True):
        _check_top5(result, net_id)
        alone = predict_client.post(f"/api/predict/{net_id}", **_upload(photo_jpeg)).json()
        assert [entry["index"] for entry in result["top5"]] == [e["index"] for e in alone["top5"]]


@pytest.mark.parametrize("net_id", ["alexnet-lecture", "zfnet-lecture"])
def test_feature_maps_show_every_conv_and_pool_volume(
    predict_client: TestClient, predict_settings: Settings, photo_jpeg: bytes, net_id: str
) -> None:
    response = predict_client.post(f"/api/predict/{net_id}/features", **_upload(photo_jpeg))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["id"], answer["weights"], answer["provider"]) == (net_id, "untrained", CPU)
    expected = [row for row in builtin_table(net_id).layers if row.kind in ("conv", "maxpool")]
    assert [layer["name"] for layer in answer["layers"]] == [row.name for row in expected]
    for layer, row in zip(answer["layers"], expected, strict=True):
        assert layer["output"] == row.output.model_dump()
        assert len(layer["channels"]) == predict_settings.feature_maps_top_k
        for heatmap in layer["channels"]:
            picture = Image.open(io.BytesIO(base64.b64decode(heatmap["png"])))
            assert picture.size == (heatmap["width"], heatmap["height"])
            assert max(picture.size) <= predict_settings.feature_map_side
    widths = [layer["output"]["width"] for layer in answer["layers"]]
    depths = [layer["output"]["channels"] for layer in answer["layers"]]
    assert widths[-1] < widths[0]
    assert depths[-1] > depths[0]


def test_a_net_says_whether_it_can_predict_before_an_upload(predict_client: TestClient) -> None:
    built = predict_client.get("/api/predict/alexnet-lecture").json()
    assert (built["available"], built["weights"], built["reason"]) == (True, "untrained", None)
    assert built["service_provider"] == CPU
    assert built["max_upload_bytes"] == predict_client.app.state.settings.max_body_predict  # type: ignore[attr-defined]
    missing = predict_client.get(f"/api/predict/{NOT_BUILT}")
    assert missing.status_code == 200  # a page asks this on load: no failed request logged
    assert missing.json()["available"] is False
    assert "not built" in missing.json()["reason"]


def test_readyz_reports_each_model_and_the_provider(
    predict_client: TestClient, repository_nets: tuple[str, ...]
) -> None:
    inference = predict_client.get("/readyz").json()["inference"]
    assert inference["provider"] == CPU
    assert "cluster" not in inference  # the ray backend's
    assert inference["provider_reason"]
    models = {model["id"]: model for model in inference["models"]}
    assert set(models) == set(builtin_registry().ids())
    for net_id in repository_nets:
        assert (models[net_id]["available"], models[net_id]["weights"]) == (True, "untrained")
    assert models[NOT_BUILT]["available"] is False
    assert "not built" in models[NOT_BUILT]["reason"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/api/predict/lenet"),
        ("POST", "/api/predict/lenet"),
        ("POST", "/api/predict/lenet/features"),
        ("POST", "/api/predict?ids=alexnet-lecture,lenet"),
    ],
)
def test_an_unknown_net_is_a_404_naming_the_known_ones(
    predict_client: TestClient,
    repository_nets: tuple[str, ...],
    photo_jpeg: bytes,
    method: str,
    url: str,
) -> None:
    body = _upload(photo_jpeg) if method == "POST" else {}
    response = predict_client.request(method, url, **body)
    assert response.status_code == 404
    error = error_of(response)
    assert (error["code"], error["id"]) == ("unknown_net", "lenet")
    assert set(repository_nets) <= set(error["known"])
    assert "alexnet-lecture" in error["message"]


@pytest.mark.parametrize(
    "url", [f"/api/predict/{NOT_BUILT}", f"/api/predict/{NOT_BUILT}/features",
            f"/api/predict?ids=alexnet-lecture,{NOT_BUILT}"],
)  # fmt: skip
def test_a_net_not_built_is_a_503_with_the_reason(
    predict_client: TestClient, photo_jpeg: bytes, url: str
) -> None:
    response = predict_client.post(url, **_upload(photo_jpeg))
    assert response.status_code == 503
    error = error_of(response)
    assert (error["code"], error["id"]) == ("model_unavailable", NOT_BUILT)
    assert "not built" in error["reason"]
    assert error["reason"] in error["message"]


def test_an_upload_that_is_not_an_image_is_a_415(predict_client: TestClient) -> None:
    response = predict_client.post("/api/predict/alexnet-lecture", **_upload(b"%PDF-1.7 hello"))
    assert response.status_code == 415
    error = error_of(response)
    assert (error["code"], error["problem"]) == ("unsupported_media_type", "unsupported_format")


def test_a_damaged_image_is_a_422(predict_client: TestClient, photo_jpeg: bytes) -> None:
    damaged = photo_jpeg[:600]  # the header survives, the pixels do not
    response = predict_client.post("/api/predict/alexnet-lecture", **_upload(damaged))
    assert response.status_code == 422
    error = error_of(response)
    assert (error["code"], error["problem"]) == ("invalid_image", "undecodable")


def test_an_empty_image_is_a_422(predict_client: TestClient) -> None:
    response = predict_client.post("/api/predict/alexnet-lecture", **_upload(b""))
    assert response.status_code == 422
    assert error_of(response)["problem"] == "empty"


def test_a_missing_image_field_is_a_422(predict_client: TestClient) -> None:
    response = predict_client.post(
        "/api/predict/alexnet-lecture", files={"picture": ("a.jpg", b"\xff\xd8", "image/jpeg")}
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert [issue["location"] for issue in error["issues"]] == ["body.image"]


def test_a_body_that_is_not_multipart_is_a_415(
    predict_client: TestClient, photo_jpeg: bytes
) -> None:
    response = predict_client.post(
        "/api/predict/alexnet-lecture",
        content=photo_jpeg,
        headers={"content-type": "image/jpeg"},
    )
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_a_multipart_body_cut_short_is_a_422(predict_client: TestClient) -> None:
    boundary = "cut"
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\nabc'.encode()
    response = predict_client.post(
        "/api/predict/alexnet-lecture",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 422
    assert error_of(response)["issues"][0]["location"] == "body.image"


@pytest.mark.parametrize("ids", ["", ",", "a,b,c,d,e"])
def test_the_ids_of_several_nets_are_one_to_four(
    predict_client: TestClient, photo_jpeg: bytes, ids: str
) -> None:
    response = predict_client.post("/api/predict", params={"ids": ids}, **_upload(photo_jpeg))
    assert response.status_code == 422
    error = error_of(response)
    assert [issue["location"] for issue in error["issues"]] == ["query.ids"]


def test_an_upload_over_the_limit_is_a_413(predict_settings: Settings, photo_jpeg: bytes) -> None:
    image = photo_jpeg
    limit = len(image) // 2
    with TestClient(
        create_app(predict_settings.model_copy(update={"max_body_predict": limit}))
    ) as small:
        declared = small.post("/api/predict/alexnet-lecture", **_upload(image))
        body, content_type = _multipart(image)
        streamed = small.post(
            "/api/predict/alexnet-lecture",
            content=iter([body[:limit], body[limit:]]),  # no Content-Length: counted as read
            headers={"content-type": content_type},
        )
    for response in (declared, streamed):
        assert response.status_code == 413
        assert error_of(response)["code"] == "payload_too_large"


def _multipart(data: bytes, boundary: str = "convatlas-test") -> tuple[bytes, str]:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
    body = (
        head.encode()
        + b"Content-Type: image/jpeg\r\n\r\n"
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_large_upload_stays_in_memory_and_its_filename_is_ignored(
    predict_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over Starlette's 1 MB spool threshold, where a form parser would write a temporary file."""

    def no_disk(*_: object, **__: object) -> None:
        raise AssertionError("an upload was written to disk")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, no_disk)
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", no_disk)
    noise = np.random.default_rng(0).integers(0, 256, (900, 900, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    assert len(buffer.getvalue()) > 2 * 1024 * 1024
    filename = "../../secret-name.png"
    response = predict_client.post(
        "/api/predict/zfnet-lecture", **_upload(buffer.getvalue(), filename)
    )
    assert response.status_code == 200, response.text
    assert "secret-name" not in response.text


def test_inference_routes_run_in_the_threadpool() -> None:
    """FastAPI runs plain functions in its threadpool; a coroutine would block the event loop."""
    routes = [route for route in predict_router.routes if isinstance(route, APIRoute)]
    assert len(routes) == 4
    assert not any(inspect.iscoroutinefunction(route.endpoint) for route in routes)


def test_the_background_build_starts_with_the_app_and_stops_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[subprocess.Popen[bytes]] = []

    def fake_build(settings: Settings) -> subprocess.Popen[bytes] | None:
        if not settings.build_on_start:
            return None
        started.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
        return started[-1]

    monkeypatch.setattr(app_module, "start_background_build", fake_build)
    settings = Settings(models_dir=tmp_path, providers="cpu")
    with TestClient(create_app(settings.model_copy(update={"build_on_start": True}))):
        assert started
        assert started[0].poll() is None
    assert started[0].returncode is not None  # terminated and reaped on shutdown
    with TestClient(create_app(settings.model_copy(update={"build_on_start": False}))) as app:
        assert app.app.state.build is None  # type: ignore[attr-defined]
    assert len(started) == 1
