"""models/<id>/config.pbtxt: how NVIDIA Triton serves a net's 1/model.onnx, written from
Triton's own ModelConfig protobuf (tritonclient's model_config_pb2), so a field Triton does not
know cannot be written. tests/nets/test_triton.py parses every config back and checks it against
the ONNX graph; docs/inference.md names the oldest Triton release that loads our ONNX files.
"""

from __future__ import annotations

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from app.nets.export import INPUT_NAME, OUTPUT_NAME
from app.specs import Spec

PLATFORM = "onnxruntime_onnx"
MAX_BATCH = 64
# Triton waits this long for more requests to fill a batch; no preferred batch size: Triton
# then batches whatever has arrived, up to MAX_BATCH (nothing measured argues for one).
MAX_QUEUE_DELAY_US = 2000


def model_config(spec: Spec, classes: int) -> pb.ModelConfig:
    volume = spec.input
    config = pb.ModelConfig(name=spec.id or spec.name, platform=PLATFORM, max_batch_size=MAX_BATCH)
    config.input.append(
        pb.ModelInput(
            name=INPUT_NAME,
            data_type=pb.TYPE_FP32,
            format=pb.ModelInput.FORMAT_NCHW,
            dims=[volume.channels, volume.height, volume.width],
        )
    )
    config.output.append(pb.ModelOutput(name=OUTPUT_NAME, data_type=pb.TYPE_FP32, dims=[classes]))
    config.dynamic_batching.max_queue_delay_microseconds = MAX_QUEUE_DELAY_US
    return config


def config_text(spec: Spec, classes: int) -> str:
    """config.pbtxt's text: Triton's protobuf text format."""
    header = "# Written by `convatlas models build`: NVIDIA Triton serves 1/model.onnx with this.\n"
    text: str = text_format.MessageToString(model_config(spec, classes))
    return header + text


def parse_config(text: str) -> pb.ModelConfig:
    """A config.pbtxt read as Triton reads it; text_format.ParseError when it would refuse it."""
    return text_format.Parse(text, pb.ModelConfig())
