"""Generates the weight-heavy ``wide`` benchmark model: [batch, 256] -> 3 x 2048 -> 10."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WIDTHS = (256, 2048, 2048, 2048, 10)
SEED = 20240603


def build_wide(path: Path) -> Path:
    """Write the model to ``path`` (fixed seed, so every run serves the same weights)."""
    rng = np.random.default_rng(SEED)
    nodes, weights = [], []
    current = "input"
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(WIDTHS)):
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        b = np.zeros(fan_out, dtype=np.float32)
        weights += [
            numpy_helper.from_array(w, f"w{layer}"),
            numpy_helper.from_array(b, f"b{layer}"),
        ]
        nodes.append(helper.make_node("MatMul", [current, f"w{layer}"], [f"mm{layer}"]))
        last = layer == len(WIDTHS) - 2
        out = "logits" if last else f"add{layer}"
        nodes.append(helper.make_node("Add", [f"mm{layer}", f"b{layer}"], [out]))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"relu{layer}"]))
            current = f"relu{layer}"
    graph = helper.make_graph(
        nodes,
        "wide",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", WIDTHS[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", WIDTHS[-1]])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
