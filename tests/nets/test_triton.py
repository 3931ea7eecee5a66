"""Every config.pbtxt is Triton's own ModelConfig, and it matches the ONNX graph beside it."""

from pathlib import Path

import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

# ONNX tensor element types -> Triton data types, for the types a model here could use.
TRITON_TYPE = {
    onnx.TensorProto.FLOAT: pb.TYPE_FP32,
    onnx.TensorProto.FLOAT16: pb.TYPE_FP16,
    onnx.TensorProto.INT64: pb.TYPE_INT64,
}


def graph_tensors(tensors: list[onnx.ValueInfoProto]) -> list[tuple[str, int, list[int]]]:
    """(name, Triton type, dims without the batch dimension) of each graph input or output."""
    found = []
    for tensor in tensors:
        shape = tensor.type.tensor_type.shape.dim
        assert shape[0].dim_param, f"{tensor.name}: the batch dimension is not dynamic"
        dims = [dim.dim_value for dim in shape[1:]]
        found.append((tensor.name, TRITON_TYPE[tensor.type.tensor_type.elem_type], dims))
    return found


def config_tensors(tensors: list[pb.ModelInput]) -> list[tuple[str, int, list[int]]]:
    return [(tensor.name, tensor.data_type, list(tensor.dims)) for tensor in tensors]


def test_every_config_parses_as_triton_reads_it_and_matches_its_graph(models_root: Path) -> None:
    nets = sorted(path for path in models_root.iterdir() if not path.name.startswith("."))
    assert len(nets) == 3  # the shared repository's (tests/conftest.py)
    for folder in nets:
        check_config(folder)


def check_config(folder: Path) -> None:
    model_id = folder.name
    config = text_format.Parse((folder / "config.pbtxt").read_text(), pb.ModelConfig())
    graph = onnx.load(str(folder / "1" / "model.onnx"), load_external_data=False).graph
    assert config.name == model_id == folder.name  # Triton refuses a name unlike the folder's
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 64
    assert config_tensors(list(config.input)) == graph_tensors(list(graph.input))
    assert config_tensors(list(config.output)) == graph_tensors(list(graph.output))
    assert config.HasField("dynamic_batching")
    assert list(config.dynamic_batching.preferred_batch_size) == []


def test_a_field_triton_does_not_know_is_refused() -> None:
    """What the test above relies on: parsing is strict, as Triton's own parser is."""
    with pytest.raises(text_format.ParseError):
        text_format.Parse('name: "x"\npreferred_batch: 8\n', pb.ModelConfig())
