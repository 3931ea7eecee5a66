"""Upload -> top-5 and feature maps through the service, end to end on a real model repository."""

import base64
import fcntl
import io
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from app.core.calculator import builtin_table
from app.inference.errors import ImageRejected, ModelUnavailable, UnknownModel
from app.inference.images import decode, preprocess
from app.inference.labels import labels
from app.inference.providers import CPU
from app.inference.service import InferenceService
from app.nets.builder import build
from app.specs import builtin_registry

PREDICT_FIELDS = {"id", "top5", "provider", "weights", "timings_ms"}
TOP_FIELDS = {"rank", "index", "label", "probability"}
TIMING_FIELDS = {"decode", "preprocess", "queue", "inference", "total"}


def torch_probabilities(model_id: str, batch: np.ndarray) -> np.ndarray:
    """The same untrained net (seed 0), run by torch: an independent check of ORT and softmax."""
    net = build(builtin_registry().get(model_id))
    with torch.no_grad():
        return torch.softmax(net(torch.from_numpy(batch)).double(), dim=1)[0].numpy()


@pytest.mark.parametrize("model_id", ["alexnet-lecture", "zfnet-2013"])
def test_an_upload_gets_a_sorted_top5_of_distinct_labels(
    service: InferenceService, upload: tuple[str, bytes], model_id: str
) -> None:
    _, data = upload
    result = service.predict(model_id, data)
    answer = json.loads(result.model_dump_json())
    assert set(answer) == PREDICT_FIELDS
    assert all(set(entry) == TOP_FIELDS for entry in answer["top5"])
    assert set(answer["timings_ms"]) == TIMING_FIELDS
    assert (result.id, result.provider, result.weights) == (model_id, CPU, "untrained")
    top5 = result.top5
    assert [entry.rank for entry in top5] == [1, 2, 3, 4, 5]
    probabilities = [entry.probability for entry in top5]
    assert probabilities == sorted(probabilities, reverse=True)
    assert len({entry.index for entry in top5}) == len({entry.label for entry in top5}) == 5
    assert all(entry.label == labels()[entry.index] for entry in top5)
    timings = result.timings_ms
    assert min(timings.decode, timings.preprocess, timings.inference) > 0
    assert timings.queue >= 0
    parts = timings.decode + timings.preprocess + timings.queue + timings.inference
    assert timings.total >= parts - 0.01


def test_the_top5_is_torchs_top5(service: InferenceService, images: Any) -> None:
    data = images.encode(images.photo_like(), "JPEG", quality=92)
    manifest = service.manifest("zfnet-2013")
    batch = preprocess(decode(data, 10**8), manifest.preprocess, 10**8)
    reference = torch_probabilities("zfnet-2013", batch)
    top5 = service.predict("zfnet-2013", data).top5
    for entry in top5:
        assert entry.probability == pytest.approx(reference[entry.index], rel=1e-5)
    sixth_best = np.sort(reference)[-6]
    assert min(entry.probability for entry in top5) >= sixth_best - 1e-9
    assert sum(entry.probability for entry in top5) < 1  # a softmax over 1000 classes


def test_two_nets_take_the_same_upload(service: InferenceService, images: Any) -> None:
    data = images.encode(images.photo_like(), "PNG")
    results = service.predict_many(["zfnet-2013", "alexnet-lecture"], data)
    assert [result.id for result in results] == ["zfnet-2013", "alexnet-lecture"]
    single = service.predict("alexnet-lecture", data)
    assert [e.index for e in results[1].top5] == [e.index for e in single.top5]


def test_feature_maps_follow_the_calculators_volumes(
    service: InferenceService, images: Any
) -> None:
    data = images.encode(images.photo_like(), "JPEG", quality=92)
    result = service.feature_maps("alexnet-lecture", data)
    rows = builtin_table("alexnet-lecture").layers
    expected = [row for row in rows if row.kind in {"conv", "maxpool", "avgpool"}]
    assert [(layer.index, layer.name, layer.kind) for layer in result.layers] == [
        (row.index, row.name, row.kind) for row in expected
    ]
    for layer, row in zip(result.layers, expected, strict=True):
        assert (layer.output.height, layer.output.width, layer.output.channels) == (
            row.output.height,
            row.output.width,
            row.output.channels,
        )
    widths = [layer.output.width for layer in result.layers]
    assert widths[0] == 55
    assert widths[-1] == 2
    assert widths == sorted(widths, reverse=True)
    assert (result.weights, result.provider) == ("untrained", CPU)


def test_heatmaps_are_small_ranked_and_true_to_the_layer(
    service: InferenceService, images: Any
) -> None:
    data = images.encode(images.photo_like(), "JPEG", quality=92)
    result = service.feature_maps("alexnet-lecture", data)
    assert len(result.model_dump_json()) < 200_000
    manifest = service.manifest("alexnet-lecture")
    batch = torch.from_numpy(preprocess(decode(data, 10**8), manifest.preprocess, 10**8))
    net = build(builtin_registry().get("alexnet-lecture"))
    with torch.no_grad():
        volumes = [output[0].numpy() for output in net.trace(batch)]
    for layer in result.layers:
        assert len(layer.channels) == 6
        activity = np.maximum(volumes[layer.index], 0).mean(axis=(1, 2))
        shown = [heatmap.channel for heatmap in layer.channels]
        assert len(set(shown)) == 6
        assert np.allclose([h.activity for h in layer.channels], activity[shown], rtol=1e-4)
        assert min(activity[shown]) >= np.sort(activity)[-6] * (1 - 1e-4)
        for heatmap in layer.channels:
            pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(heatmap.png))))
            assert pixels.dtype == np.uint8
            assert pixels.shape == (heatmap.height, heatmap.width)
            assert max(pixels.shape) <= 32
        brightest = max(layer.channels, key=lambda h: volumes[layer.index][h.channel].max())
        decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(brightest.png))))
        if max(layer.output.height, layer.output.width) <= 32:  # not shrunk: the peak is 255
            assert decoded.max() == 255


def test_an_unknown_net_and_an_unbuilt_one_are_told_apart(
    service: InferenceService, images: Any
) -> None:
    data = images.encode(images.photo_like(), "PNG")
    with pytest.raises(UnknownModel) as unknown:
        service.predict("resnet50", data)
    assert unknown.value.http_status == 404
    with pytest.raises(ModelUnavailable) as unbuilt:
        service.predict("vgg19", data)
    assert unbuilt.value.http_status == 503
    assert "convatlas models build vgg19" in unbuilt.value.reason


def test_a_bad_upload_is_rejected_before_any_model_runs(service: InferenceService) -> None:
    with pytest.raises(ImageRejected) as caught:
        service.predict("alexnet-lecture", b"GIF89a but not really")
    assert caught.value.http_status in {415, 422}
    assert not any(model.loaded for model in service.status().models)


def test_a_running_build_is_reported(
    tmp_path: Path, make_service: Callable[..., InferenceService]
) -> None:
    service = make_service(models_dir=tmp_path)
    assert service.status().build_running is False
    with (tmp_path / ".build.lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        status = service.status()
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert status.build_running is True
    assert all("a build is running now" in (model.reason or "") for model in status.models)


def test_status_lists_every_net_and_what_is_loaded(service: InferenceService, images: Any) -> None:
    before = {model.id: model for model in service.status().models}
    assert list(before) == builtin_registry().ids()
    assert before["alexnet-lecture"].available
    assert not before["alexnet-lecture"].loaded
    assert before["alexnet-lecture"].weights == "untrained"
    assert "seed 0" in (before["alexnet-lecture"].weights_detail or "")
    assert not before["vgg16"].available
    service.predict("alexnet-lecture", images.encode(images.photo_like(), "PNG"))
    after = {model.id: model for model in service.status().models}
    assert after["alexnet-lecture"].loaded
    assert after["alexnet-lecture"].provider == CPU
    assert not after["zfnet-2013"].loaded


def test_concurrent_requests_share_one_session(
    make_service: Callable[..., InferenceService], faults: Any, images: Any
) -> None:
    service = make_service(open_session=faults)
    data = images.encode(images.photo_like(), "JPEG")
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: service.predict("zfnet-2013", data), range(16)))
    assert faults.opened == ["model.onnx"]
    first = results[0].top5
    assert all(result.top5 == first for result in results)
    assert sum(faults.batches) == 16


def test_sessions_beyond_the_memory_budget_are_dropped(
    make_service: Callable[..., InferenceService], images: Any
) -> None:
    service = make_service(model_cache_bytes=1)  # room for nothing: only the latest stays
    data = images.encode(images.photo_like(), "PNG")
    service.predict("alexnet-lecture", data)
    service.predict("zfnet-2013", data)
    loaded = {model.id for model in service.status().models if model.loaded}
    assert loaded == {"zfnet-2013"}
    roomy = make_service()
    roomy.predict("alexnet-lecture", data)
    roomy.predict("zfnet-2013", data)
    assert {m.id for m in roomy.status().models if m.loaded} == {"alexnet-lecture", "zfnet-2013"}
