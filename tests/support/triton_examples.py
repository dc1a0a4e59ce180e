"""Triton's documented example models (``simple``, ``simple_int8``, ``simple_string``),
rebuilt as ONNX with their ``config.pbtxt`` as Triton's docs write it (the platform made
``onnxruntime_onnx``): two inputs of 16 elements, their sum and difference out; and an
image classifier configured as Triton's ``densenet_onnx`` example is (``reshape`` on
both tensors, ``format: FORMAT_NCHW``, a labels file), with a ``model_warmup`` sample,
small enough for a test."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from support.onnx_models import OPSET

_PBTXT = """name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  {{
    name: "INPUT0"
    data_type: {data_type}
    dims: [ 16 ]
  }},
  {{
    name: "INPUT1"
    data_type: {data_type}
    dims: [ 16 ]
  }}
]
output [
  {{
    name: "OUTPUT0"
    data_type: {data_type}
    dims: [ 16 ]
  }},
  {{
    name: "OUTPUT1"
    data_type: {data_type}
    dims: [ 16 ]
  }}
]
"""

# Model name -> (ONNX element type, Triton data_type).
EXAMPLES = {
    "simple": (TensorProto.INT32, "TYPE_INT32"),
    "simple_int8": (TensorProto.INT8, "TYPE_INT8"),
    "simple_string": (TensorProto.STRING, "TYPE_STRING"),
}


def _add_sub(elem: int) -> onnx.ModelProto:
    """OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1 over [batch, 16]; strings are
    read as INT32 numbers and written back as text, as Triton's simple_string does."""
    nodes, a, b = [], "INPUT0", "INPUT1"
    if elem == TensorProto.STRING:
        nodes += [
            helper.make_node("Cast", ["INPUT0"], ["a"], to=TensorProto.INT32),
            helper.make_node("Cast", ["INPUT1"], ["b"], to=TensorProto.INT32),
        ]
        a, b = "a", "b"
    results = ("sum", "diff") if elem == TensorProto.STRING else ("OUTPUT0", "OUTPUT1")
    nodes += [
        helper.make_node("Add", [a, b], [results[0]]),
        helper.make_node("Sub", [a, b], [results[1]]),
    ]
    if elem == TensorProto.STRING:
        nodes += [
            helper.make_node("Cast", ["sum"], ["OUTPUT0"], to=TensorProto.STRING),
            helper.make_node("Cast", ["diff"], ["OUTPUT1"], to=TensorProto.STRING),
        ]
    tensors = [
        helper.make_tensor_value_info(name, elem, ["batch", 16])
        for name in ("INPUT0", "INPUT1", "OUTPUT0", "OUTPUT1")
    ]
    graph = helper.make_graph(nodes, "add_sub", tensors[:2], tensors[2:])
    return helper.make_model(graph, opset_imports=OPSET, ir_version=8)


def triton_example_repository(root: Path) -> Path:
    """``root/<example>/config.pbtxt`` and ``root/<example>/1/model.onnx`` for each."""
    for name, (elem, data_type) in EXAMPLES.items():
        (root / name / "1").mkdir(parents=True)
        onnx.save(_add_sub(elem), root / name / "1" / "model.onnx")
        (root / name / "config.pbtxt").write_text(_PBTXT.format(name=name, data_type=data_type))
    return root


IMAGE_CLASSES = ("red", "green", "blue")
IMAGE_SIDE = 8
IMAGE_PBTXT = """name: "image"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [
  {{
    name: "data_0"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, {side}, {side} ]
    reshape {{ shape: [ 1, 3, {side}, {side} ] }}
  }}
]
output [
  {{
    name: "fc6_1"
    data_type: TYPE_FP32
    dims: [ 3 ]
    reshape {{ shape: [ 1, 3, 1, 1 ] }}
    label_filename: "labels.txt"
  }}
]
model_warmup [
  {{
    name: "black image"
    batch_size: 0
    inputs {{
      key: "data_0"
      value: {{ data_type: TYPE_FP32 dims: [ 3, {side}, {side} ] zero_data: true }}
    }}
  }}
]
"""


def image_model() -> onnx.ModelProto:
    """``densenet_onnx``'s tensors at a small size: ``data_0`` FP32 [1, 3, side, side] in,
    ``fc6_1`` [1, 3, 1, 1] out, each channel's mean (so the brightest channel wins)."""
    side = IMAGE_SIDE
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["data_0"], ["fc6_1"])],
        "image",
        [helper.make_tensor_value_info("data_0", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("fc6_1", TensorProto.FLOAT, [1, 3, 1, 1])],
    )
    return helper.make_model(graph, opset_imports=OPSET, ir_version=8)


def image_repository(root: Path, pbtxt: str | None = None) -> Path:
    """``root/image``: the model, its labels and its ``config.pbtxt`` (``IMAGE_PBTXT``
    unless another is given)."""
    (root / "image" / "1").mkdir(parents=True)
    onnx.save(image_model(), root / "image" / "1" / "model.onnx")
    (root / "image" / "labels.txt").write_text("\n".join(IMAGE_CLASSES) + "\n")
    text = IMAGE_PBTXT.format(side=IMAGE_SIDE) if pbtxt is None else pbtxt
    (root / "image" / "config.pbtxt").write_text(text)
    return root / "image"
