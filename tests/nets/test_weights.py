"""Pretrained weights: a checkpoint in torchvision's exact format, hash-named, loaded strictly;
downloads that are cached, verified, atomic, and that fall back to untrained when offline."""

import fcntl
import http.server
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from app.building.build import build_models
from app.cli import main
from app.nets import weights as w
from app.nets.builder import build
from app.nets.plan import Downloads, Plan, plan_weights, resolve
from app.settings import Settings
from app.specs import builtin_registry

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "torchvision"
PRETRAINED = "alexnet-torchvision"


def write_checkpoint(folder: Path, spec_id: str, stem: str, seed: int) -> Path:
    """A state_dict saved as torchvision's files are, renamed to carry its own sha256 prefix."""
    net = build(builtin_registry().get(spec_id), seed=seed)
    draft = folder / f"{stem}.pth"
    torch.save(net.state_dict(), draft)
    named = folder / f"{stem}-{w.sha256_of(draft)[:8]}.pth"
    draft.rename(named)
    return named


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("weights"), "alexnet-torchvision", "alexnet", 7)


class Files(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *_: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path.startswith("/cut/"):  # promises more bytes than it sends
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A local HTTP server: (base URL, folder it serves, paths requested)."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests: list[str] = []
    handler = type("Handler", (Files,), {"requests": requests})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(folder))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder, requests
    httpd.shutdown()
    httpd.server_close()


def leftovers(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.exists() for p in folder.rglob("*.partial")]


def test_the_test_checkpoint_is_in_torchvisions_exact_format(checkpoint: Path) -> None:
    golden = json.loads((GOLDEN / "alexnet.json").read_text())
    state = torch.load(checkpoint, weights_only=True)
    assert [[key, list(value.shape)] for key, value in state.items()] == golden["state_dict"]
    assert w.hash_prefix(checkpoint.name) == w.sha256_of(checkpoint)[:8]


BUILDER_FILES = sorted(
    p.name for p in GOLDEN.glob("*.json") if p.name != "imagenet_categories.json"
)


@pytest.mark.parametrize("name", BUILDER_FILES)
def test_the_hash_prefix_is_read_from_torchvisions_filenames(name: str) -> None:
    info = json.loads((GOLDEN / name).read_text())["weights"]
    assert w.hash_prefix(info["filename"]) == info["sha256_prefix"]
    assert w.url_filename(info["url"]) == info["filename"]


def test_names_without_a_hash_carry_none() -> None:
    assert w.hash_prefix("my-weights.pth") is None
    assert w.hash_prefix("alexnet.pth") is None


def test_a_checkpoint_loads_strictly_and_completely(checkpoint: Path) -> None:
    net = build(builtin_registry().get("alexnet-torchvision"), seed=None)
    path, sha256 = w.local_checkpoint(checkpoint)
    w.load_into(net, path)
    expected = build(builtin_registry().get("alexnet-torchvision"), seed=7).state_dict()
    assert sha256 == w.sha256_of(checkpoint)
    assert all(torch.equal(value, expected[key]) for key, value in net.state_dict().items())


def test_a_wrong_hash_prefix_is_rejected(checkpoint: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "alexnet-00000000.pth"
    wrong.hardlink_to(checkpoint)
    with pytest.raises(w.WeightsError, match="the filename says 00000000"):
        w.local_checkpoint(wrong)


def test_a_checkpoint_that_does_not_fit_is_rejected(checkpoint: Path, tmp_path: Path) -> None:
    state = torch.load(checkpoint, weights_only=True)
    del state["classifier.6.bias"]
    state["features.0.weight"] = torch.zeros(64, 3, 3, 3)
    path = tmp_path / "misfit.pth"
    torch.save(state, path)
    net = build(builtin_registry().get("alexnet-torchvision"), seed=None)
    with pytest.raises(w.WeightsError) as caught:
        w.load_into(net, path)
    assert "classifier.6.bias" in str(caught.value)
    assert "features.0.weight" in str(caught.value)


def test_only_weights_are_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "code.pth"
    torch.save({"features.0.weight": torch.zeros(1), "hook": Settings()}, path)
    with pytest.raises(w.WeightsError, match="not a loadable checkpoint"):
        w.load_into(build(builtin_registry().get("alexnet-lecture")), path)
    torch.save([torch.zeros(1)], path)
    with pytest.raises(w.WeightsError, match="not a state_dict"):
        w.load_into(build(builtin_registry().get("alexnet-lecture")), path)


def test_a_download_is_verified_cached_and_reused(
    server: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    base, served, requests = server
    source = write_checkpoint(served, "alexnet-lecture", "lecture", 3)
    cache = tmp_path / "cache"
    path, sha256 = w.fetch(f"{base}/{source.name}", cache, timeout=10)
    assert path == cache / source.name
    assert path.read_bytes() == source.read_bytes()
    assert sha256 == w.sha256_of(source)
    again = w.fetch(f"{base}/{source.name}", cache, timeout=10)
    assert again == (path, sha256)
    assert requests == [f"/{source.name}"]  # the second time came from the cache
    assert leftovers(cache) == []


def test_a_download_with_the_wrong_hash_leaves_nothing(
    server: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    base, served, _ = server
    (served / "vgg16-397923af.pth").write_bytes(b"not the published file")
    cache = tmp_path / "cache"
    with pytest.raises(w.WeightsError, match="397923af"):
        w.fetch(f"{base}/vgg16-397923af.pth", cache, timeout=10)
    assert list(cache.iterdir()) == []


def test_a_cut_download_leaves_nothing(server: tuple[str, Path, list[str]], tmp_path: Path) -> None:
    base, _, _ = server
    cache = tmp_path / "cache"
    with pytest.raises(w.DownloadFailed):
        w.fetch(f"{base}/cut/vgg16-397923af.pth", cache, timeout=10)
    assert list(cache.iterdir()) == []


def test_http_errors_and_silence_are_told_apart(
    server: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    base, _, _ = server
    with pytest.raises(w.DownloadFailed, match="HTTP 404") as missing:
        w.fetch(f"{base}/nothing-12345678.pth", tmp_path, timeout=10)
    assert missing.value.offline is False
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(w.DownloadFailed) as refused:
        w.fetch(f"http://127.0.0.1:{port}/vgg16-397923af.pth", tmp_path, timeout=10)
    assert refused.value.offline is True


def offline(*_: Any, **__: Any) -> Any:
    raise w.urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))


def test_offline_the_build_says_so_and_falls_back_to_untrained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(w.urllib.request, "urlopen", offline)
    said: list[str] = []
    settings = Settings(weights_dir=tmp_path / "cache")
    root = tmp_path / "models"
    outcomes = build_models([PRETRAINED], root=root, settings=settings, say=said.append)
    [outcome] = outcomes
    assert outcome.status == "built"
    assert outcome.weights is not None
    assert outcome.weights.kind == "untrained"
    assert said[0].startswith("alexnet-torchvision: offline: pretrained weights could not be")
    assert "falling back to untrained" in said[0]
    manifest = json.loads((root / "alexnet-torchvision" / "manifest.json").read_text())
    assert manifest["weights"]["state"] == "not_downloaded"
    assert manifest["weights"]["seed"] == 0
    assert manifest["weights"]["note"].startswith("offline")
    assert leftovers(root, tmp_path / "cache") == []
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []
    [again] = build_models([PRETRAINED], root=root, settings=settings, say=said.append)
    assert again.status == "up to date"  # still offline: it tried, said so, kept the build
    assert said[-2].startswith("alexnet-torchvision: offline: ")


def test_a_bad_hash_fails_the_build_and_writes_nothing(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "alexnet-00000000.pth"
    wrong.hardlink_to(checkpoint)
    root = tmp_path / "models"
    flags = ["--weights", str(wrong), "--root", str(root)]
    assert main(["models", "build", "alexnet-torchvision", *flags]) == 1
    assert "the filename says 00000000" in capsys.readouterr().out  # the net's outcome
    assert not (root / "alexnet-torchvision").exists()
    assert leftovers(root) == []


def test_after_one_offline_failure_a_run_tries_no_more_downloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries: list[str] = []

    def counting_offline(url: str, **_: Any) -> Any:
        tries.append(url)
        return offline()

    monkeypatch.setattr(w.urllib.request, "urlopen", counting_offline)
    downloads = Downloads(tmp_path, timeout=1)
    urls = [builtin_registry().get(i).weights.url for i in ("vgg11", "vgg13")]  # type: ignore[union-attr]
    plans = [Plan("default", url) for url in urls]
    for plan in plans:
        weights, checkpoint = resolve(plan, downloads, lambda _: None, "net")
        assert (weights.kind, checkpoint) == ("untrained", None)
    assert tries == urls[:1]
    with pytest.raises(w.DownloadFailed, match="offline"):
        resolve(Plan("checkpoint", urls[1]), downloads, lambda _: None, "net")


def test_offline_each_net_names_its_own_weights_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """A multi-net run stops downloading after the first offline failure; every later net's
    message (and manifest note) must still name that net's URL, not the first net's."""
    monkeypatch.setattr(w.urllib.request, "urlopen", offline)
    specs = [builtin_registry().get(i) for i in ("alexnet-torchvision", "vgg11", "vgg16-bn")]
    downloads = Downloads(Path("/nonexistent/cache"), timeout=1)
    said: list[str] = []
    for spec in specs:
        resolve(plan_weights(spec, None, False), downloads, said.append, spec.id or "")
    urls = [spec.weights.url for spec in specs if spec.weights is not None]
    assert len(said) == len(urls) == len(specs)
    for message, url in zip(said, urls, strict=True):
        others = [other for other in urls if other != url]
        assert url in message
        assert not [other for other in others if other in message], message
        assert "offline" in message


class Response:
    """What urlopen returns, offline: ``body`` in one chunk, ``during()`` called before it."""

    def __init__(self, body: bytes, during: Callable[[], None]) -> None:
        self.body, self.during = body, during
        self.headers: dict[str, str] = {}  # no Content-Length, as some servers send none

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def read(self, size: int) -> bytes:
        if self.body:
            self.during()  # the temporary file exists and the download is under way
        chunk, self.body = self.body[:size], self.body[size:]
        return chunk


def serve(monkeypatch: pytest.MonkeyPatch, during: Callable[[], None] = lambda: None) -> None:
    """Every URL downloads offline; its checkpoint name carries no hash, so none is checked."""
    monkeypatch.setattr(
        w.urllib.request, "urlopen", lambda *_, **__: Response(b"a checkpoint", during)
    )


def partials(cache: Path) -> list[Path]:
    return [path for path in cache.iterdir() if path.name.endswith(".partial")]


def name_of_a_partial(cache: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of the temporary file a real download of vgg19.pth wrote, gone since."""
    seen: list[Path] = []
    serve(monkeypatch, during=lambda: seen.extend(partials(cache)))
    w.fetch("https://example.org/vgg19.pth", cache, timeout=1)
    (cache / "vgg19.pth").unlink()
    [path] = seen
    assert not path.exists()
    return path.name


def is_locked(path: Path) -> bool:
    """Whether some other open file holds an exclusive flock on ``path``."""
    with path.open("rb") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


def test_a_killed_downloads_leftover_is_removed_by_the_next_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    stale = cache / name_of_a_partial(cache, monkeypatch)
    stale.write_bytes(b"half a checkpoint")  # as a SIGKILL mid-download leaves it
    other_extension = cache / ".resnet18.ckpt.ab12_z9x.partial"  # a --weights URL's, say
    other_extension.write_bytes(b"half a checkpoint")
    not_ours = [
        "notes.partial",
        ".notes.partial",
        ".vgg19.pth.partial",
        f"{stale.name}.txt",
        "vgg19.pth.0123456789abcdef0123456789abcdef.partial",  # torch hub's: it takes no lock
        "alexnet-owt-7be5be79.pth",
    ]
    for name in not_ours:
        (cache / name).write_text("a user's file")
    w.fetch("https://example.org/vgg11.pth", cache, timeout=1)
    assert not stale.exists()
    assert not other_extension.exists()
    assert [(cache / name).read_text() for name in not_ours] == ["a user's file"] * len(not_ours)


def test_a_partial_file_being_written_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    busy = cache / name_of_a_partial(cache, monkeypatch)
    with busy.open("wb") as writer:  # another process's download, under way
        fcntl.flock(writer, fcntl.LOCK_EX)
        w.fetch("https://example.org/vgg11.pth", cache, timeout=1)
        assert busy.exists()
    w.fetch("https://example.org/vgg13.pth", cache, timeout=1)  # and now it was killed
    assert not busy.exists()


def test_a_download_locks_its_partial_file_while_it_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    locked: list[bool] = []
    serve(monkeypatch, during=lambda: locked.extend(is_locked(p) for p in partials(cache)))
    path, _ = w.fetch("https://example.org/vgg19.pth", cache, timeout=1)
    assert locked == [True]
    assert path.read_bytes() == b"a checkpoint"
    assert partials(cache) == []


def test_a_sweep_between_creating_and_locking_a_partial_file_costs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's sweep may find the new file before its download has locked it."""
    cache = tmp_path / "cache"
    cache.mkdir()
    lock = fcntl.flock
    swept: list[list[Path]] = []  # the partial files before the sweep, then after it

    def flock_after_a_sweep(file: int, operation: int) -> None:
        if not swept:  # only the first lock: the download's, on the file it has just made
            swept.append(partials(cache))
            w.remove_stale_partials(cache)  # its own locks come here too, and go on below
            swept.append(partials(cache))
        lock(file, operation)

    serve(monkeypatch)
    monkeypatch.setattr(fcntl, "flock", flock_after_a_sweep)
    path, _ = w.fetch("https://example.org/vgg19.pth", cache, timeout=1)
    assert path.read_bytes() == b"a checkpoint"
    assert partials(cache) == []
    [before, after] = swept
    assert (len(before), after) == (1, [])  # the sweep did take the new file: it was unlocked
