"""Every model file's sha256 verified in the background from the start: a file damaged in place
(the right size, other bytes) makes its net unavailable before any prediction, digests are
remembered by file identity, a rebuilt file is verified again, and close() stops it all.

No test here times anything: each waits for the verifier to be idle (with a generous limit that
only a hang would reach) and then checks what it found.
"""

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from damage import (
    FEATURES,
    MANIFEST,
    MODEL,
    flip_bytes_in_the_middle,
    flip_in_place,
    private_copy,
    rebuild,
)
from fastapi.testclient import TestClient

from app.inference.errors import ModelUnavailable
from app.inference.integrity import (
    CHUNK,
    IOPRIO_CLASS_IDLE,
    LOWEST_NICE,
    VERIFY_THREAD,
    Digest,
    DigestCache,
    Verifier,
    file_identity,
    hash_file,
    io_priority_class,
    set_io_priority,
)
from app.inference.results import NetIntegrity
from app.inference.service import InferenceService
from app.settings import Settings
from app.web.app import create_app

BROKEN, HEALTHY = "alexnet-lecture", "zfnet-2013"
SETTLE_S = 120  # only a hang waits this long


class Hasher:
    """The real hash_file, counting the files it reads; ``hold`` makes each read wait (with the
    file open) until the verifier is stopped."""

    def __init__(self, hold: bool = False) -> None:
        self.paths: list[Path] = []
        self.hold = hold
        self.started = threading.Event()

    def __call__(self, path: Path, stop: threading.Event) -> Digest | None:
        self.paths.append(path)
        if self.hold:
            with path.open("rb"):
                self.started.set()
                stop.wait(SETTLE_S)
        return hash_file(path, stop)


@pytest.fixture
def hasher() -> Hasher:
    return Hasher()


@pytest.fixture
def verifier(hasher: Hasher) -> Iterator[Verifier]:
    """A verifier with a cache of its own (not the process's shared one)."""
    made = Verifier(DigestCache(), hasher)
    yield made
    made.close()


def settle(verifier: Verifier) -> None:
    assert verifier.wait_idle(SETTLE_S), "the verifier did not finish"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_sha(root: Path, net: str, which: str = "model") -> str:
    sha: str = json.loads((root / net / MANIFEST).read_text())[which]["sha256"]
    return sha


def open_files() -> set[Path]:
    """What this process has open now (Linux's /proc)."""
    found = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            found.add(Path(os.readlink(fd)))
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
    return found


def status_of(service: InferenceService, net: str) -> tuple[Any, NetIntegrity]:
    status = service.status()
    model = next(model for model in status.models if model.id == net)
    return model, next(entry for entry in status.integrity if entry.id == net)


def test_a_right_size_damaged_file_is_unavailable_before_any_prediction(
    make_service: Any, faults: Any, verifier: Verifier, repository: Path, images: Any
) -> None:
    flip_bytes_in_the_middle(repository / BROKEN / MODEL)
    service = make_service(open_session=faults, verifier=verifier, models_dir=repository)
    settle(verifier)

    expected, got = manifest_sha(repository, BROKEN), sha256_of(repository / BROKEN / MODEL)
    reason = f"1/model.onnx does not match the sha256 in its manifest: expected {expected[:12]}"
    model, integrity = status_of(service, BROKEN)
    assert (model.available, model.loaded) == (False, False)
    assert reason in (model.reason or "")
    assert f"got {got[:12]}..." in (model.reason or "")
    assert f"run `convatlas models build {BROKEN}`" in (model.reason or "")
    assert integrity.state == "mismatch"
    assert reason in (integrity.detail or "")
    healthy, healthy_integrity = status_of(service, HEALTHY)
    assert healthy.available
    assert healthy_integrity.state == "verified"

    with pytest.raises(ModelUnavailable) as caught:  # the load-time check's code and status
        service.predict(BROKEN, images.encode(images.photo_like(), "JPEG"))
    assert (caught.value.http_status, caught.value.code) == (503, "model_unavailable")
    assert reason in caught.value.reason
    assert faults.opened == []  # known broken without loading it


def test_an_intact_repository_is_verified_file_by_file(
    make_service: Any, verifier: Verifier, hasher: Hasher, repository_nets: tuple[str, ...]
) -> None:
    service = make_service(verifier=verifier)
    settle(verifier)
    status = service.status()
    states = {entry.id: entry.state for entry in status.integrity}
    assert [entry.id for entry in status.integrity] == [model.id for model in status.models]
    assert {net: states[net] for net in repository_nets} == dict.fromkeys(
        repository_nets, "verified"
    )
    assert states["vgg16"] == "unchecked"  # not built: nothing to check
    assert all(model.available for model in status.models if model.id in repository_nets)
    assert len(hasher.paths) == len(set(hasher.paths)) == 2 * len(repository_nets)
    sizes = [path.stat().st_size for path in hasher.paths]
    net_sizes = [sizes[i] + sizes[i + 1] for i in range(0, len(sizes), 2)]
    assert net_sizes == sorted(net_sizes)  # smallest net first


def test_a_repaired_file_is_verified_again_without_a_restart(
    make_service: Any,
    verifier: Verifier,
    repository: Path,
    models_root: Path,
    images: Any,
) -> None:
    flip_bytes_in_the_middle(repository / BROKEN / MODEL)
    service = make_service(verifier=verifier, models_dir=repository)
    settle(verifier)
    model, integrity = status_of(service, BROKEN)
    assert (model.available, integrity.state) == (False, "mismatch")

    rebuild(repository, models_root, BROKEN)
    model, integrity = status_of(service, BROKEN)  # new files: asked for, not hashed here
    assert (model.available, model.reason) == (True, None)  # the load checks it meanwhile
    assert integrity.state == "verifying"
    assert "1/model.onnx" in (integrity.detail or "")
    settle(verifier)
    model, integrity = status_of(service, BROKEN)
    assert (model.available, integrity.state, integrity.detail) == (True, "verified", None)
    assert service.predict(BROKEN, images.encode(images.photo_like(), "PNG")).id == BROKEN


def test_a_damaged_rebuild_is_found_after_a_good_one(
    make_service: Any, verifier: Verifier, repository: Path
) -> None:
    service = make_service(verifier=verifier, models_dir=repository)
    settle(verifier)
    assert status_of(service, BROKEN)[1].state == "verified"
    flip_bytes_in_the_middle(repository / BROKEN / FEATURES)  # a new file, the same size
    assert status_of(service, BROKEN)[1].state == "verifying"
    settle(verifier)
    model, integrity = status_of(service, BROKEN)
    assert integrity.state == "mismatch"
    assert "features.onnx does not match the sha256 in its manifest" in (model.reason or "")


def test_digests_are_kept_by_file_identity(
    make_service: Any, verifier: Verifier, hasher: Hasher, repository: Path
) -> None:
    service = make_service(verifier=verifier, models_dir=repository)
    settle(verifier)
    hashed = len(hasher.paths)
    for _ in range(3):  # an unchanged file is never hashed again
        assert status_of(service, HEALTHY)[1].state == "verified"
    settle(verifier)
    assert len(hasher.paths) == hashed

    path = repository / HEALTHY / MODEL
    private_copy(path)  # replaced: the same bytes, a new inode
    assert status_of(service, HEALTHY)[1].state == "verifying"
    settle(verifier)
    assert hasher.paths[hashed:] == [path]

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched
    assert status_of(service, HEALTHY)[1].state == "verifying"
    settle(verifier)
    assert hasher.paths[hashed:] == [path, path]
    assert status_of(service, HEALTHY)[1].state == "verified"


def test_an_edit_in_place_that_puts_the_mtime_back_is_found(
    make_service: Any, verifier: Verifier, repository: Path
) -> None:
    path = repository / BROKEN / MODEL
    private_copy(path)
    service = make_service(verifier=verifier, models_dir=repository)
    settle(verifier)
    assert status_of(service, BROKEN)[1].state == "verified"
    before = path.stat()
    flip_in_place(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    assert status_of(service, BROKEN)[1].state == "verifying"
    settle(verifier)
    model, integrity = status_of(service, BROKEN)
    assert (model.available, integrity.state) == (False, "mismatch")


def test_a_load_records_its_digest_and_does_not_wait_for_the_verifier(
    make_service: Any, repository: Path, images: Any
) -> None:
    held = Hasher(hold=True)
    verifier = Verifier(DigestCache(), held)
    service = make_service(verifier=verifier, models_dir=repository)
    assert held.started.wait(SETTLE_S)  # the verifier sits on its first file
    path = repository / HEALTHY / MODEL
    assert service.predict(HEALTHY, images.encode(images.photo_like(), "PNG")).id == HEALTHY
    identity = file_identity(path)
    assert identity is not None
    assert verifier.cache.get(identity) == manifest_sha(repository, HEALTHY)


def io_priority_can_be_lowered() -> bool:
    """Whether this platform lets a thread take the idle I/O class (a probe thread tries)."""
    lowered: list[bool] = []
    probe = threading.Thread(
        target=lambda: lowered.append(set_io_priority(threading.get_native_id(), IOPRIO_CLASS_IDLE))
    )
    probe.start()
    probe.join()
    return lowered == [True]


@pytest.mark.skipif(not io_priority_can_be_lowered(), reason="ioprio_set is refused here")
def test_the_verifier_reads_at_the_lowest_cpu_and_io_priority_and_only_it(
    make_service: Any, repository: Path
) -> None:
    this_thread = threading.get_native_id()
    # As found (CI may itself run under nice or ionice): the service must leave them so.
    before = (os.getpriority(os.PRIO_PROCESS, this_thread), io_priority_class(this_thread))
    held = Hasher(hold=True)
    make_service(verifier=Verifier(DigestCache(), held), models_dir=repository)
    assert held.started.wait(SETTLE_S)  # the verifier's thread sits on its first file
    [verifying] = [thread for thread in threading.enumerate() if thread.name == VERIFY_THREAD]
    assert verifying.native_id is not None
    assert os.getpriority(os.PRIO_PROCESS, verifying.native_id) == LOWEST_NICE
    assert io_priority_class(verifying.native_id) == IOPRIO_CLASS_IDLE
    after = (os.getpriority(os.PRIO_PROCESS, this_thread), io_priority_class(this_thread))
    assert after == before


def test_close_stops_the_verification_and_closes_its_file(
    make_service: Any, repository: Path
) -> None:
    held = Hasher(hold=True)
    verifier = Verifier(DigestCache(), held)
    service = make_service(verifier=verifier, models_dir=repository)
    assert held.started.wait(SETTLE_S)
    assert verifier.running
    reading = held.paths[0]
    assert reading in open_files()

    service.close()
    assert not verifier.running  # close() waited for the thread
    assert reading not in open_files()
    assert held.paths == [reading]  # nothing read after it
    assert verifier.cache.get(file_identity(reading)) is None  # type: ignore[arg-type]
    model, integrity = status_of(service, HEALTHY)
    assert (model.available, integrity.state) == (True, "unchecked")
    assert not verifier.running  # status() after close asks for nothing


class StopAfterOneChunk(threading.Event):
    """A stop event that is set once the first chunk is read, noting whether the file was open
    when it was asked."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.open_when_asked: list[bool] = []

    def is_set(self) -> bool:
        self.open_when_asked.append(self.path in open_files())
        return True


def test_hash_file_reads_in_chunks_and_stops_between_them(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(os.urandom(3 * CHUNK + 5))
    digest = hash_file(path)
    assert digest.sha256 == sha256_of(path)
    assert digest.identity == file_identity(path)

    stop = StopAfterOneChunk(path)
    assert hash_file(path, stop) is None
    assert stop.open_when_asked == [True]  # asked between chunks, the file open
    assert path not in open_files()


def test_the_digest_cache_holds_one_version_per_path(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    cache = DigestCache()
    old = hash_file(path)
    cache.record(old)
    assert old.identity is not None
    assert cache.get(old.identity) == old.sha256
    private_copy(path)
    path.write_bytes(b"new")
    new = hash_file(path)
    assert new.identity is not None
    assert new.identity != old.identity
    assert cache.get(new.identity) is None
    cache.record(new)
    assert (cache.get(old.identity), cache.get(new.identity)) == (None, new.sha256)
    cache.record(Digest("0" * 64, None))  # a file that changed while it was read: not kept
    assert cache.get(new.identity) == new.sha256


def test_readyz_shows_a_damaged_file_and_predict_answers_503(repository: Path, images: Any) -> None:
    flip_bytes_in_the_middle(repository / BROKEN / MODEL)
    settings = Settings(models_dir=repository, build_on_start=False, providers="cpu")
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + SETTLE_S
        while True:  # the server verifies in the background: ask until it has
            inference = client.get("/readyz").json()["inference"]
            states = {entry["id"]: entry["state"] for entry in inference["integrity"]}
            if "verifying" not in states.values() or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        models = {model["id"]: model for model in inference["models"]}
        assert states[BROKEN] == "mismatch"
        assert states[HEALTHY] == "verified"
        assert models[BROKEN]["available"] is False
        assert "does not match the sha256 in its manifest" in models[BROKEN]["reason"]
        assert models[HEALTHY]["available"] is True

        info = client.get(f"/api/predict/{BROKEN}").json()
        assert (info["available"], info["reason"]) == (False, models[BROKEN]["reason"])
        data = images.encode(images.photo_like(), "JPEG")
        files = {"image": ("picture.jpg", data, "application/octet-stream")}
        response = client.post(f"/api/predict/{BROKEN}", files=files)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "model_unavailable"
        assert client.post(f"/api/predict/{HEALTHY}", files=files).status_code == 200
        assert client.get("/healthz").status_code == 200
