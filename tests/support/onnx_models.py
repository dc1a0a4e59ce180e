"""Small ONNX models built in tests: identity over every datatype, and a dynamic-batch adder."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import onnx
from onnx import TensorProto, helper

OPSET = [helper.make_opsetid("", 17)]

# Protocol datatype -> ONNX element type, for every datatype tensorgate serves.
ONNX_TYPES = {
    "BOOL": TensorProto.BOOL,
    "UINT8": TensorProto.UINT8,
    "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32,
    "UINT64": TensorProto.UINT64,
    "INT8": TensorProto.INT8,
    "INT16": TensorProto.INT16,
    "INT32": TensorProto.INT32,
    "INT64": TensorProto.INT64,
    "FP16": TensorProto.FLOAT16,
    "FP32": TensorProto.FLOAT,
    "FP64": TensorProto.DOUBLE,
    "BYTES": TensorProto.STRING,
}


def identity_model(datatypes: Iterable[str] = ONNX_TYPES) -> onnx.ModelProto:
    """One input ``in_<dt>`` [batch, 2] per datatype (all of them unless ``datatypes``
    names some), echoed as ``out_<dt>``."""
    inputs, outputs, nodes = [], [], []
    for datatype in datatypes:
        elem, name = ONNX_TYPES[datatype], datatype.lower()
        inputs.append(helper.make_tensor_value_info(f"in_{name}", elem, ["batch", 2]))
        outputs.append(helper.make_tensor_value_info(f"out_{name}", elem, ["batch", 2]))
        nodes.append(helper.make_node("Identity", [f"in_{name}"], [f"out_{name}"]))
    graph = helper.make_graph(nodes, "identity", inputs, outputs)
    return helper.make_model(graph, opset_imports=OPSET, ir_version=8)


def adder_model() -> onnx.ModelProto:
    """``a`` + ``b`` (FP32 [batch, 3]) -> ``sum``; two inputs sharing the batch dimension."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"])],
        "adder",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 3]),
        ],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 3])],
    )
    return helper.make_model(graph, opset_imports=OPSET, ir_version=8)


def fixed_shape_model() -> onnx.ModelProto:
    """FP32 [2, 2] -> Relu; no dynamic dimension at all."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "fixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
    )
    return helper.make_model(graph, opset_imports=OPSET, ir_version=8)


def write_model(root: Path, name: str, model: onnx.ModelProto, version: int = 1) -> Path:
    """Save ``model`` as ``root/name/version/model.onnx`` and return its path."""
    path = root / name / str(version) / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def slow_model(iterations: int) -> onnx.ModelProto:
    """FP32 ``x`` [batch, 1] -> ``y`` = x + ``iterations``, one Add per Loop iteration: a
    model that takes a while, so that a request can be caught waiting behind it."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["v_in", "one"], ["v_out"]),
        ],
        "step",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None),
        ],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "keep_going", "x"], ["y"], body=body)],
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])],
        [
            helper.make_tensor("trips", TensorProto.INT64, [], [iterations]),
            helper.make_tensor("keep_going", TensorProto.BOOL, [], [True]),
        ],
    )
    return helper.make_model(graph, opset_imports=OPSET, ir_version=8)
