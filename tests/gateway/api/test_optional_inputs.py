"""Triton's ``optional`` inputs: an ONNX initializer the graph also lists as an input
(ONNX Runtime lets a request override it) declared ``optional: true`` in config.pbtxt may
be left out of a request, which then runs with the model's own value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from support.app import make_settings, open_client

PBTXT = """name: "scaled"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [
  {{ name: "x" data_type: TYPE_FP32 dims: [ 1, 4 ] {x_optional}}},
  {{ name: "{scale}" data_type: TYPE_FP32 dims: [ 1 ] optional: true }}
]
output [ {{ name: "y" data_type: TYPE_FP32 dims: [ 1, 4 ] }} ]
"""


def scaled_model(root: Path, pbtxt: str | None) -> Path:
    """y = x * scale, where scale is an initializer (2.0) the graph lists as an input."""
    tensors = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
        helper.make_tensor_value_info("scale", TensorProto.FLOAT, [1]),
        helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]),
    ]
    scale = numpy_helper.from_array(np.array([2.0], np.float32), "scale")
    node = helper.make_node("Mul", ["x", "scale"], ["y"])
    graph = helper.make_graph([node], "scaled", tensors[:2], tensors[2:], initializer=[scale])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (root / "scaled" / "1").mkdir(parents=True)
    onnx.save(model, str(root / "scaled" / "1" / "model.onnx"))
    if pbtxt is not None:
        (root / "scaled" / "config.pbtxt").write_text(pbtxt)
    return root


def x_input() -> dict[str, Any]:
    return {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}


async def infer(client: httpx.AsyncClient, *inputs: dict[str, Any]) -> httpx.Response:
    return await client.post("/v2/models/scaled/infer", json={"inputs": list(inputs)})


async def test_an_optional_input_may_be_left_out_or_given(tmp_path: Path) -> None:
    root = scaled_model(tmp_path / "models", PBTXT.format(x_optional="", scale="scale"))
    async with open_client(make_settings(root)) as client:
        default = await infer(client, x_input())
        assert default.status_code == 200, default.text
        assert default.json()["outputs"][0]["data"] == [2.0, 4.0, 6.0, 8.0]
        scale = {"name": "scale", "shape": [1], "datatype": "FP32", "data": [10.0]}
        given = await infer(client, x_input(), scale)
        assert given.json()["outputs"][0]["data"] == [10.0, 20.0, 30.0, 40.0]
        missing = await infer(client, scale)
        assert missing.status_code == 400
        assert "missing input 'x'" in missing.json()["error"]
        config = (await client.get("/v2/models/scaled/config")).json()
        assert [(i["name"], i["optional"]) for i in config["input"]] == [
            ("x", False),
            ("scale", True),
        ]
        typed = await client.post("/models/scaled/predict", json={"inputs": {"x": [[1, 1, 1, 1]]}})
        assert typed.status_code == 200, typed.text


async def test_an_initializer_not_declared_optional_stays_hidden(tmp_path: Path) -> None:
    root = scaled_model(tmp_path / "models", None)  # no config: nothing declared optional
    async with open_client(make_settings(root)) as client:
        metadata = (await client.get("/v2/models/scaled")).json()
        assert [i["name"] for i in metadata["inputs"]] == ["x"]
        scale = {"name": "scale", "shape": [1], "datatype": "FP32", "data": [10.0]}
        refused = await infer(client, x_input(), scale)
        assert refused.status_code == 400
        assert "the model has 1 (x)" in refused.json()["error"]


@pytest.mark.parametrize(
    ("x_optional", "scale", "expected"),
    [
        ("optional: true ", "scale", "input 'x' is declared optional, but the model requires it"),
        ("", "gain", "input 'gain' is declared optional, but the model has no such input"),
    ],
)
async def test_optional_on_what_the_model_cannot_leave_out_fails_the_load(
    tmp_path: Path, x_optional: str, scale: str, expected: str
) -> None:
    root = scaled_model(tmp_path / "models", PBTXT.format(x_optional=x_optional, scale=scale))
    async with open_client(make_settings(root)) as client:
        ready = await client.get("/v2/models/scaled/ready")
        assert ready.status_code != 200
        index = (await client.post("/v2/repository/index")).json()
        assert expected in index[0]["reason"]
