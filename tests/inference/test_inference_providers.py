"""Provider choice: CUDA only when it really runs, otherwise the CPU, said plainly and quietly."""

from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from app.inference import providers
from app.inference.providers import CPU, CUDA, choose_provider
from app.inference.service import InferenceService

ON_A_GPU_MACHINE = providers.nvidia_driver_present()
cpu_machine_only = pytest.mark.skipif(
    ON_A_GPU_MACHINE, reason="an NVIDIA driver is present: the CPU fallback is not observable"
)


@cpu_machine_only
def test_asking_for_cuda_on_a_cpu_machine_gives_the_cpu_and_says_so(
    make_service: Callable[..., InferenceService], images: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    service = make_service(providers="cuda")
    status = service.status()
    assert (status.requested_provider, status.provider) == ("cuda", CPU)
    assert status.provider_reason.startswith("CUDA was requested but cannot run: ")
    result = service.predict("alexnet-lecture", images.encode(images.photo_like(), "PNG"))
    assert result.provider == CPU
    assert "onnxruntime" not in capfd.readouterr().err  # no error spam


@cpu_machine_only
def test_the_cuda_probe_is_quiet_when_the_libraries_are_missing(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # Pretend a driver is there, so ORT really tries (and fails) to start its CUDA provider.
    monkeypatch.setattr(providers, "nvidia_driver_present", lambda: True)
    choice = choose_provider("auto")
    captured = capfd.readouterr()
    assert choice.provider == CPU
    assert choice.reason.startswith("running on the CPU: ")
    assert "CUDA" in choice.reason or "cuda" in choice.reason  # ORT's own words, kept
    assert captured.err == ""
    assert captured.out == ""


def test_the_cpu_is_used_when_asked_for() -> None:
    choice = choose_provider("cpu")
    assert (choice.provider, choice.session_providers) == (CPU, [CPU])
    assert "requested" in choice.reason


def test_without_a_cuda_provider_in_onnxruntime_the_cpu_is_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU])
    choice = choose_provider("auto")
    assert choice.provider == CPU
    assert "no CUDA provider" in choice.reason


def test_a_cuda_choice_keeps_the_cpu_for_what_cuda_lacks() -> None:
    choice = providers.ProviderChoice("auto", CUDA, "test")
    assert choice.session_providers == [CUDA, CPU]


def probe_model() -> onnx.ModelProto:
    """The probe: a 1x1 conv and a ReLU, so that cuDNN as well as CUDA must work."""
    weight = numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "cuda_probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4, 4])],
        [weight],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="convatlas"
    )
    model.ir_version = 8
    return model


def test_the_shipped_probe_model_is_the_documented_one_and_runs() -> None:
    shipped = (resources.files("app.inference") / "data" / "cuda_probe.onnx").read_bytes()
    assert shipped == probe_model().SerializeToString()
    onnx.checker.check_model(onnx.load_from_string(shipped), full_check=True)
    session = ort.InferenceSession(shipped, providers=[CPU])
    x = np.arange(-8, 8, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], np.maximum(x, 0))
