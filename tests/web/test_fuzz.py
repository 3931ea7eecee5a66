"""Fuzzing: Schemathesis against /openapi.json on a real server, and Hypothesis-generated specs.

Both bounded: Schemathesis at 25 cases per operation and phase with a fixed seed (about 2,000
requests, 20 s here), Hypothesis at 150 specs. `make reliability` runs Schemathesis longer, on a
fresh seed, and measures the calculator's time per spec.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.specs.models import LAYER_KINDS
from scripts.reliability.scenarios import schemathesis_clean

from .test_limits_server import ROOT, LiveServer, serving

SCHEMATHESIS = Path(sys.executable).parent / "st"
CONFIG = ROOT / "scripts" / "reliability" / "schemathesis.toml"
SEED = "20261126"
RUN_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def server(models_root: Path) -> Iterator[LiveServer]:
    with serving(models_root) as live:
        yield live


def test_schemathesis_finds_no_failure(server: LiveServer) -> None:
    """Every default check (no 500, every status and content type declared, every response
    matching its schema, invalid data refused), over the examples, coverage, fuzzing and
    stateful phases. scripts/reliability/schemathesis.toml says which checks are tuned, and why."""
    command = [str(SCHEMATHESIS), "--config-file", str(CONFIG), "--no-color", "run"]
    command += [f"{server.url}/openapi.json", "--max-examples", "25", "--seed", SEED]
    command += ["--workers", "2", "--request-timeout", "30", "--generation-database", "none"]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert schemathesis_clean(done.returncode, report), report  # see TOOL_CRASH there
    assert server.healthy()


# Specs as hundreds of students invent them: mostly shaped like a spec, with every number
# anywhere from -2^63 to 10^12 (the limits and one past them included), now and then a wrong
# type, an unknown kind or key, a lecture figure, or a name full of markup.

LIMIT_EDGES = [0, 1, 2, 15, 16, 17, 31, 32, 64, 128, 129, 4096, 4097, 8192, 8193, 65536, 65537]
HUGE = [10**6, 10**9, 10**12, 2**31, 2**63, -1, -(2**63)]
NUMBERS = st.one_of(
    st.integers(1, 12), st.sampled_from(LIMIT_EDGES), st.sampled_from(HUGE), st.integers()
)
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.lists(st.integers(0, 4), max_size=3),
)
VALUES = st.one_of(NUMBERS, NUMBERS, NUMBERS, ODD_VALUES)
NAMES = st.one_of(st.text(max_size=70), st.just("<script>alert(1)</script>"), st.none())
QUANTITIES = ["input", "output", "filters", "kernel", "weights", "params", "depth"]
FIGURE_VALUES = st.one_of(
    st.integers(1, 10**7), st.lists(st.integers(1, 300), min_size=3, max_size=3), VALUES
)
FIGURES = st.fixed_dictionaries(
    {"ref": st.integers(1, 3), "says": st.text(), "quantity": st.sampled_from(QUANTITIES)},
    optional={"value": FIGURE_VALUES},
)
LAYER_FIELDS = [
    "out_channels", "kernel", "stride", "padding", "dilation", "groups", "output_size", "size",
    "out_features",
]  # fmt: skip
LAYERS = st.fixed_dictionaries(
    {"kind": st.sampled_from([*LAYER_KINDS, "transformer"])},
    optional={
        **dict.fromkeys(LAYER_FIELDS, VALUES),
        "name": NAMES,
        "bias": st.one_of(st.booleans(), ODD_VALUES),
        "p": st.floats(allow_nan=False, allow_infinity=False),
        "ceil_mode": st.booleans(),
        "lecture": st.lists(FIGURES, max_size=1),
        "surprise": VALUES,
    },
)
HOSTILE_SPECS = st.fixed_dictionaries(
    {
        "name": NAMES,
        "input": st.fixed_dictionaries({"height": VALUES, "width": VALUES, "channels": VALUES}),
        "layers": st.lists(LAYERS, max_size=10),
    },
    optional={"lecture": st.lists(FIGURES, max_size=1), "notes": st.lists(st.text(max_size=5))},
)

# Specs a student means: small, mostly computable, so the arithmetic and the limits on totals
# run too (a third of these are valid), with names and lecture figures of any kind.
SMALL = st.integers(1, 5)
GOOD_NAMES = st.one_of(st.text(min_size=1, max_size=64), st.just("<script>alert(1)</script>"))
GOOD_FIGURES = st.fixed_dictionaries(
    {
        "ref": st.integers(1, 3),
        "says": st.text(max_size=9),
        "quantity": st.sampled_from(QUANTITIES),
        "value": st.one_of(st.integers(1, 10**7), st.lists(SMALL, min_size=3, max_size=3)),
    }
)
PLAUSIBLE_LAYERS = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.just("conv"), "out_channels": st.integers(1, 64), "kernel": SMALL},
        optional={"stride": st.integers(1, 3), "padding": st.integers(0, 2), "name": GOOD_NAMES},
    ),
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["maxpool", "avgpool"]), "kernel": st.integers(1, 3)},
        optional={"stride": st.integers(1, 2), "name": GOOD_NAMES},
    ),
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["relu", "batchnorm", "dropout", "flatten", "softmax"])},
        optional={"name": GOOD_NAMES},
    ),
    st.fixed_dictionaries({"kind": st.just("lrn"), "size": SMALL}),
    st.fixed_dictionaries(
        {"kind": st.just("linear"), "out_features": st.integers(1, 100)},
        optional={"name": GOOD_NAMES},
    ),
)
WITH_FIGURE = st.tuples(PLAUSIBLE_LAYERS, st.lists(GOOD_FIGURES, max_size=1)).map(
    lambda pair: {**pair[0], "lecture": pair[1]} if pair[1] else pair[0]
)
PLAUSIBLE_SPECS = st.fixed_dictionaries(
    {
        "name": st.text(min_size=1, max_size=64),
        "input": st.fixed_dictionaries(
            {"height": st.integers(8, 64), "width": st.integers(8, 64), "channels": SMALL}
        ),
        "layers": st.lists(st.one_of(PLAUSIBLE_LAYERS, WITH_FIGURE), min_size=1, max_size=8),
    },
    optional={"lecture": st.lists(GOOD_FIGURES, max_size=1)},
)
SPECS = st.one_of(PLAUSIBLE_SPECS, PLAUSIBLE_SPECS, HOSTILE_SPECS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.one_of(SPECS, SPECS, SPECS, st.recursive(st.none() | NUMBERS, st.lists)))
def test_a_generated_spec_gets_200_or_422_never_5xx(client: TestClient, spec: Any) -> None:
    body = json.dumps(spec).encode()
    headers = {"content-type": "application/json"}
    strict = client.post("/api/analyze", content=body, headers=headers)
    assert strict.status_code in (200, 422), strict.text[:500]
    if strict.status_code == 422:
        assert strict.json()["error"]["code"] in ("invalid_spec", "invalid_json")
    check = client.post("/api/analyze/check", content=body, headers=headers)
    assert check.status_code == 200, check.text[:500]
    assert check.json()["valid"] is (strict.status_code == 200)
