"""Session options, the input/output check against the manifest, and the memory-bounded cache."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.inference.sessions import (
    BrokenModel,
    Loaded,
    SessionCache,
    SessionKey,
    batch_capacity,
    session_options,
    usable_cores,
)
from app.repository.manifest import InputSpec
from app.settings import Settings

SPEC = InputSpec(name="input", height=227, width=227, channels=3, layout="NCHW", dtype="float32")
SPINNING = ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning")


def test_runs_use_every_core_without_spinning_or_a_growing_arena() -> None:
    options = session_options(Settings())
    assert options.intra_op_num_threads == usable_cores()
    assert options.inter_op_num_threads == 1
    assert [options.get_session_config_entry(key) for key in SPINNING] == ["0", "0"]
    assert options.enable_cpu_mem_arena is False


def test_threads_and_spinning_can_be_set() -> None:
    options = session_options(Settings(intra_op_threads=3, ort_spinning=True))
    assert options.intra_op_num_threads == 3
    assert [options.get_session_config_entry(key) for key in SPINNING] == ["1", "1"]


@dataclass(frozen=True)
class Node:
    name: str
    shape: list[Any]
    type: str = "tensor(float)"


class Signature:
    """A session as far as batch_capacity looks at it."""

    def __init__(self, inputs: list[Node], outputs: list[str]) -> None:
        self.inputs = inputs
        self.outputs = [Node(name, []) for name in outputs]

    def get_inputs(self) -> list[Node]:
        return self.inputs

    def get_outputs(self) -> list[Node]:
        return self.outputs


@pytest.mark.parametrize(
    ("batch", "capacity"), [("batch", None), (None, None), (1, 1)], ids=["named", "unnamed", "1"]
)
def test_the_batch_a_model_takes_comes_from_its_input(batch: Any, capacity: int | None) -> None:
    session = Signature([Node("input", [batch, 3, 227, 227])], ["logits"])
    assert batch_capacity(session, SPEC, ["logits"]) == capacity  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("inputs", "outputs", "reason"),
    [
        ([Node("x", ["N", 3, 227, 227])], ["logits"], "takes inputs (x); the manifest says"),
        (
            [Node("input", ["N", 3, 224, 224])],
            ["logits"],
            "takes tensor(float) [N, 3, 224, 224]; the manifest says float32 [N, 3, 227, 227]",
        ),
        ([Node("input", ["N", 3, 227, 227], "tensor(uint8)")], ["logits"], "takes tensor(uint8)"),
        ([Node("input", [4, 3, 227, 227])], ["logits"], "has a fixed batch of 4"),
        ([Node("input", ["N", 3, 227, 227])], ["probs"], "lacks the outputs logits"),
    ],
    ids=["input name", "input shape", "input type", "fixed batch", "output"],
)
def test_a_model_unlike_its_manifest_is_broken(
    inputs: list[Node], outputs: list[str], reason: str
) -> None:
    with pytest.raises(BrokenModel) as caught:
        batch_capacity(Signature(inputs, outputs), SPEC, ["logits"])  # type: ignore[arg-type]
    assert reason in caught.value.reason


def key(name: str, sha: str = "0" * 64) -> SessionKey:
    return SessionKey(Path(name), sha)


def entry(size: int) -> Loaded:
    return Loaded(session=object(), provider="CPU", bytes=size)  # type: ignore[arg-type]


def test_room_for_twice_the_file_is_made_before_a_model_loads() -> None:
    cache = SessionCache(budget_bytes=100)
    cache.get(key("a"), 25, lambda: entry(25))
    cache.get(key("b"), 25, lambda: entry(25))
    cache.get(key("a"), 25, lambda: entry(25))  # a hit: "b" is now the least recently used
    held_while_loading: list[set[Path]] = []

    def load_c() -> Loaded:
        held_while_loading.append({k.path for k in cache.loaded()})
        return entry(30)

    cache.get(key("c"), 30, load_c)  # loading takes 60: at most 40 may stay
    assert held_while_loading == [{Path("a")}]  # "b" went before "c" loaded
    assert {k.path for k in cache.loaded()} == {Path("a"), Path("c")}


def test_the_model_just_loaded_stays_even_above_the_budget() -> None:
    cache = SessionCache(budget_bytes=10)
    cache.get(key("a"), 5, lambda: entry(5))
    cache.get(key("big"), 50, lambda: entry(50))
    assert [k.path for k in cache.loaded()] == [Path("big")]


def test_a_rebuilt_file_replaces_its_older_build() -> None:
    cache = SessionCache(budget_bytes=1000)
    cache.get(key("a", "0" * 64), 10, lambda: entry(10))
    cache.get(key("a", "1" * 64), 10, lambda: entry(10))
    assert list(cache.loaded()) == [key("a", "1" * 64)]


def test_a_discarded_session_is_loaded_afresh() -> None:
    cache = SessionCache(budget_bytes=1000)
    first = cache.get(key("a"), 10, lambda: entry(10))
    cache.discard(key("a"), entry(10))  # not the cached object: nothing happens
    assert cache.get(key("a"), 10, lambda: entry(10)) is first
    cache.discard(key("a"), first)
    assert cache.get(key("a"), 10, lambda: entry(10)) is not first


def test_a_failed_load_leaves_nothing_behind() -> None:
    cache = SessionCache(budget_bytes=1000)

    def fail() -> Loaded:
        raise BrokenModel("no")

    with pytest.raises(BrokenModel):
        cache.get(key("a"), 10, fail)
    assert cache.loaded() == {}
    assert cache.get(key("a"), 10, lambda: entry(10)).bytes == 10
