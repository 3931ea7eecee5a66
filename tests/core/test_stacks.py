"""VGG's case for stacked 3x3 convs: the paper's figures exactly, each stage's counts worked out
here by hand, and on random stacks the same receptive field with fewer weights at C channels."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.stacks import stack_cases
from app.specs import builtin_registry
from app.specs.models import Spec

VGG = [net for net in builtin_registry().ids() if builtin_registry().get(net).family == "VGG"]


def test_at_256_channels_three_3x3_have_1_769_472_weights_against_3_211_264() -> None:
    stage3 = stack_cases(builtin_registry().get("vgg16"))[2]
    assert stage3.layers == ["conv3_1", "conv3_2", "conv3_3"]
    assert stage3.channels == 256
    assert stage3.stack_at_c.weights == 3 * (3 * 3 * 256 * 256) == 1_769_472
    assert stage3.single_at_c.weights == 7 * 7 * 256 * 256 == 3_211_264
    assert stage3.stack_at_c.weights_formula == (
        "3*3*256*256 + 3*3*256*256 + 3*3*256*256 = 1,769,472"
    )
    assert stage3.single_at_c.weights_formula == "7*7*256*256 = 3,211,264"
    assert (stage3.stack.receptive_field, stage3.single.receptive_field) == (7, 7)
    assert (stage3.stack.nonlinearities, stage3.single.nonlinearities) == (3, 1)


def test_vgg16s_stages_as_the_net_builds_them() -> None:
    cases = stack_cases(builtin_registry().get("vgg16"))
    assert [case.convs for case in cases] == [2, 2, 3, 3, 3]
    stage3 = cases[2]
    # conv3_1 takes pool2's 128 channels: 56 x 56 x 128 in
    assert (stage3.input.width, stage3.input.height, stage3.input.channels) == (56, 56, 128)
    assert stage3.stack.weights == 3 * 3 * 128 * 256 + 2 * (3 * 3 * 256 * 256) == 1_474_560
    assert stage3.single.weights == 7 * 7 * 128 * 256 == 1_605_632
    assert stage3.stack.macs == 56 * 56 * 1_474_560 == 4_624_220_160
    assert stage3.single.macs == 56 * 56 * 1_605_632 == 5_035_261_952
    assert stage3.weights_saved == 1_605_632 - 1_474_560
    stage1 = cases[0]  # from 3 channels the first 3x3 is cheap, the second is not
    assert stage1.stack.weights == 3 * 3 * 3 * 64 + 3 * 3 * 64 * 64 == 38_592
    assert stage1.single.weights == 5 * 5 * 3 * 64 == 4_800


@pytest.mark.parametrize("net", VGG)
def test_every_vgg_stage_sees_as_far_as_one_large_conv_with_fewer_weights_at_c(net: str) -> None:
    cases = stack_cases(builtin_registry().get(net))
    assert cases, f"{net} has stacked 3x3 stages"
    for case in cases:
        n, c = case.convs, case.channels
        assert case.stack.receptive_field == case.single.receptive_field == 2 * n + 1
        assert case.stack_at_c.weights == n * 9 * c * c
        assert case.single_at_c.weights == (2 * n + 1) ** 2 * c * c
        assert case.stack_at_c.weights < case.single_at_c.weights
        assert case.stack.nonlinearities == n


STACK = st.fixed_dictionaries(
    {
        "n": st.integers(2, 5),
        "c_in": st.integers(1, 64),
        "c": st.integers(1, 64),
        "side": st.integers(12, 64),
        "pad": st.sampled_from([0, 1]),
    }
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STACK)
def test_a_random_stack_matches_the_hand_arithmetic(case: dict[str, Any]) -> None:
    n, c_in, c, side, pad = case["n"], case["c_in"], case["c"], case["side"], case["pad"]
    layers: list[dict[str, Any]] = []
    for _ in range(n):
        layers += [
            {"kind": "conv", "out_channels": c, "kernel": 3, "padding": pad},
            {"kind": "relu"},
        ]
    spec = Spec.model_validate(
        {
            "name": "stack",
            "input": {"height": side, "width": side, "channels": c_in},
            "layers": [*layers, {"kind": "maxpool", "kernel": 2}],
        }
    )
    (found,) = stack_cases(spec)
    assert found.stack.weights == 9 * c_in * c + (n - 1) * 9 * c * c
    assert found.single.weights == (2 * n + 1) ** 2 * c_in * c
    last = side - 2 * n * (1 - pad)  # each unpadded 3x3 loses 2 pixels
    assert found.single.macs == last * last * c * (2 * n + 1) ** 2 * c_in
    sides = [side - 2 * (i + 1) * (1 - pad) for i in range(n)]
    expected = sum(s * s * c * 9 * (c_in if i == 0 else c) for i, s in enumerate(sides))
    assert found.stack.macs == expected
    assert found.stack.receptive_field == found.single.receptive_field == 2 * n + 1
