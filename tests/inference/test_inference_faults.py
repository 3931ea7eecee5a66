"""Broken model files: the net is unavailable with the reason (predict and status), the other net
and everything else keep working, and a rebuild makes it ready again without a restart."""

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from damage import FEATURES, MANIFEST, MODEL, flip_bytes_in_the_middle, rebuild

from app.inference.errors import ModelUnavailable
from app.inference.service import InferenceService

BROKEN, HEALTHY = "alexnet-lecture", "zfnet-2013"  # 227 and 224 inputs
CHUNK = 1024 * 1024


def replace(path: Path, data: bytes) -> None:
    """Write a new file in place of ``path`` (never into it: it is hard-linked to the original)."""
    path.unlink()
    path.write_bytes(data)


def manifest_of(folder: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    return manifest


def edit_manifest(folder: Path, which: str, **fields: object) -> None:
    manifest = manifest_of(folder)
    manifest[which].update(fields)
    replace(folder / MANIFEST, json.dumps(manifest).encode())


def missing(folder: Path, _: Path) -> None:
    (folder / MODEL).unlink()


def empty(folder: Path, _: Path) -> None:
    replace(folder / MODEL, b"")


def truncated(folder: Path, _: Path) -> None:
    with (folder / MODEL).open("rb") as file:
        replace(folder / MODEL, file.read(CHUNK))


def corrupt(folder: Path, _: Path) -> None:
    flip_bytes_in_the_middle(folder / MODEL)  # the right size: only the hash can tell


def sha_mismatch(folder: Path, _: Path) -> None:
    edit_manifest(folder, "model", sha256="0" * 64)


def zeros_the_manifest_vouches_for(folder: Path, _: Path) -> None:
    size = (folder / MODEL).stat().st_size
    (folder / MODEL).unlink()
    with (folder / MODEL).open("wb") as file:
        file.truncate(size)  # sparse: no data written
    digest = hashlib.sha256()
    for start in range(0, size, CHUNK):
        digest.update(bytes(min(CHUNK, size - start)))
    edit_manifest(folder, "model", sha256=digest.hexdigest())


def wrong_input_shape(folder: Path, root: Path) -> None:
    other = root / HEALTHY
    (folder / MODEL).unlink()
    (folder / MODEL).hardlink_to(other / MODEL)  # takes 224 x 224; the manifest says 227
    file = manifest_of(other)["model"]
    edit_manifest(folder, "model", bytes=file["bytes"], sha256=file["sha256"])


def corrupt_features(folder: Path, _: Path) -> None:
    flip_bytes_in_the_middle(folder / FEATURES)


# Each way to break BROKEN's files, and what the reason says.
BREAKS: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "missing": (missing, "1/model.onnx is missing"),
    "0 bytes": (empty, "1/model.onnx has 0 bytes, the manifest says "),
    "truncated": (truncated, f"1/model.onnx has {CHUNK} bytes, the manifest says "),
    "corrupt": (corrupt, "1/model.onnx does not match the sha256 in its manifest: expected "),
    "sha256 mismatch": (sha_mismatch, "1/model.onnx does not match the sha256 in its manifest"),
    "unloadable": (zeros_the_manifest_vouches_for, "onnxruntime cannot load 1/model.onnx: "),
    "wrong input shape": (wrong_input_shape, "224, 224]; the manifest says float32 [N, 3, 227"),
    "corrupt features": (corrupt_features, "features.onnx does not match the sha256"),
}


def status_of(service: InferenceService, net: str) -> Any:
    return next(model for model in service.status().models if model.id == net)


@pytest.mark.parametrize("case", list(BREAKS))
def test_a_broken_model_file_makes_its_net_unavailable_until_rebuilt(
    make_service: Callable[..., InferenceService],
    faults: Any,
    repository: Path,
    models_root: Path,
    images: Any,
    case: str,
) -> None:
    break_files, reason = BREAKS[case]
    break_files(repository / BROKEN, repository)
    service = make_service(open_session=faults, models_dir=repository)
    data = images.encode(images.photo_like(), "JPEG")
    ask = service.feature_maps if case == "corrupt features" else service.predict
    for _ in range(2):  # a broken file is remembered, not loaded again
        with pytest.raises(ModelUnavailable) as caught:
            ask(BROKEN, data)
        assert caught.value.http_status == 503
        assert reason in caught.value.reason
    assert faults.opened.count(Path(MODEL).name) <= 1
    broken = status_of(service, BROKEN)
    assert (broken.available, broken.loaded) == (False, False)
    assert reason in (broken.reason or "")
    assert status_of(service, HEALTHY).available

    rebuild(repository, models_root, BROKEN)
    assert status_of(service, BROKEN).available
    assert ask(BROKEN, data).id == BROKEN


def test_the_other_net_predicts_while_one_is_broken(
    make_service: Callable[..., InferenceService], repository: Path, images: Any
) -> None:
    corrupt(repository / BROKEN, repository)
    service = make_service(models_dir=repository)
    data = images.encode(images.photo_like(), "JPEG")
    with pytest.raises(ModelUnavailable):
        service.predict(BROKEN, data)
    assert service.predict(HEALTHY, data).id == HEALTHY
    assert service.feature_maps(HEALTHY, data).id == HEALTHY
    assert service.status().queue.waiting == 0


def test_an_unbuilt_net_says_how_to_build_it(
    make_service: Callable[..., InferenceService], repository: Path, images: Any
) -> None:
    shutil.rmtree(repository / BROKEN)
    service = make_service(models_dir=repository)
    with pytest.raises(ModelUnavailable) as caught:
        service.predict(BROKEN, images.encode(images.photo_like(), "PNG"))
    assert caught.value.reason == f"not built; run `convatlas models build {BROKEN}`"
