"""Triton's ``reshape``: clients send and receive a tensor with its configured ``dims``,
the model gets and gives its own shape; a reshape that cannot hold fails the load naming
the tensor (issue 22)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backends.loading import load_backend
from gateway.repository.config import load_model_config
from gateway.repository.declared import Declaration, DeclaredTensor
from gateway.repository.reshaped import ReshapedBackend, ReshapedInlineBackend, with_reshapes
from support.app import make_settings, open_client
from support.onnx_models import adder_model, write_model
from support.triton_examples import IMAGE_CLASSES, IMAGE_SIDE, image_repository

SIDE = IMAGE_SIDE


def picture(channel: int) -> np.ndarray:
    """A [3, side, side] image whose ``channel`` is brightest."""
    image = np.full((3, SIDE, SIDE), 0.1, dtype=np.float32)
    image[channel] = 0.9
    return image


async def test_an_image_model_serves_in_its_configured_dims(tmp_path: Path) -> None:
    image_repository(tmp_path)
    async with open_client(make_settings(tmp_path)) as http:
        metadata = (await http.get("/v2/models/image")).json()
        assert metadata["inputs"] == [
            {"name": "data_0", "datatype": "FP32", "shape": [3, SIDE, SIDE]}
        ]
        assert metadata["outputs"] == [{"name": "fc6_1", "datatype": "FP32", "shape": [3]}]
        config = (await http.get("/v2/models/image/config")).json()
        assert config["input"][0]["dims"] == [3, SIDE, SIDE]
        assert config["input"][0]["reshape"] == {"shape": [1, 3, SIDE, SIDE]}
        assert config["input"][0]["format"] == "FORMAT_NCHW"
        assert config["output"][0]["dims"] == [3]
        assert config["output"][0]["reshape"] == {"shape": [1, 3, 1, 1]}
        assert config["max_batch_size"] == 0
        data = picture(2)
        body = {
            "inputs": [
                {
                    "name": "data_0",
                    "shape": [3, SIDE, SIDE],
                    "datatype": "FP32",
                    "data": data.ravel().tolist(),
                }
            ]
        }
        answer = (await http.post("/v2/models/image/infer", json=body)).json()
        (output,) = answer["outputs"]
        assert output["shape"] == [3]
        assert np.allclose(output["data"], [0.1, 0.1, 0.9])
        top = {"name": "fc6_1", "parameters": {"classification": 2}}
        ranked = await http.post("/v2/models/image/infer", json={**body, "outputs": [top]})
        assert ranked.json()["outputs"][0]["data"] == ["0.900000:2:blue", "0.100000:0:red"]
        # The model's own shape is not the served one: a request in it is refused.
        wrong = {**body["inputs"][0], "shape": [1, 3, SIDE, SIDE]}
        refused = await http.post("/v2/models/image/infer", json={"inputs": [wrong]})
        assert refused.status_code == 400
        assert f"[3, {SIDE}, {SIDE}]" in refused.json()["error"]
    assert IMAGE_CLASSES[2] == "blue"


BATCHED = """
max_batch_size: 4
input [ {{ name: "data_0" data_type: TYPE_FP32 dims: [ {elements} ]
           reshape {{ shape: [ 3, {side}, {side} ] }} }} ]
output [ {{ name: "fc6_1" data_type: TYPE_FP32 dims: [ 3 ] reshape {{ shape: [ 3, 1, 1 ] }} }} ]
dynamic_batching {{ }}
"""


async def test_a_batching_model_reshapes_each_row(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, save

    from support.onnx_models import OPSET

    model = image_repository(tmp_path, BATCHED.format(elements=3 * SIDE * SIDE, side=SIDE))
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["data_0"], ["fc6_1"])],
        "image",
        [helper.make_tensor_value_info("data_0", TensorProto.FLOAT, ["n", 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("fc6_1", TensorProto.FLOAT, ["n", 3, 1, 1])],
    )
    save(helper.make_model(graph, opset_imports=OPSET, ir_version=8), model / "1" / "model.onnx")
    rows = np.stack([picture(0).ravel(), picture(1).ravel()])
    async with open_client(make_settings(tmp_path)) as http:
        body = {
            "inputs": [
                {"name": "data_0", "shape": list(rows.shape), "datatype": "FP32",
                 "data": rows.ravel().tolist()}
            ]
        }  # fmt: skip
        answer = await http.post("/v2/models/image/infer", json=body)
        assert answer.status_code == 200, answer.text
        (output,) = answer.json()["outputs"]
        assert output["shape"] == [2, 3]
        assert np.allclose(output["data"], [0.9, 0.1, 0.1, 0.1, 0.9, 0.1])


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (
            'input [ { name: "a" data_type: TYPE_FP32 dims: [ 3 ] reshape { shape: [ 2 ] } } ]',
            "reshape [2] holds 2 elements, dims [3] hold 3",
        ),
        (
            'input [ { name: "a" data_type: TYPE_FP32 dims: [ -1 ] reshape { shape: [ 3 ] } } ]',
            "a reshape between variable-size dims is not served",
        ),
        (
            'input [ { name: "a" data_type: TYPE_FP32 dims: [ 3 ] reshape { shape: [ 3, 1 ] } } ]',
            "config input 'a': reshape [3, 1], the model's are [3] without the batch axis",
        ),
    ],
)
async def test_a_reshape_that_cannot_hold_fails_the_load(
    tmp_path: Path, tensor: str, message: str
) -> None:
    write_model(tmp_path, "adder", adder_model())
    (tmp_path / "adder" / "config.pbtxt").write_text(f"max_batch_size: 8\n{tensor}\n")
    async with open_client(make_settings(tmp_path)) as http:
        index = (await http.post("/v2/repository/index")).json()
    (entry,) = [e for e in index if e["name"] == "adder"]
    assert entry["state"] == "UNAVAILABLE"
    assert message in entry["reason"]


def test_a_reshape_to_the_same_shape_is_read(tmp_path: Path) -> None:
    write_model(tmp_path, "adder", adder_model())
    (tmp_path / "adder" / "config.pbtxt").write_text(
        'max_batch_size: 8\ninput [ { name: "a" data_type: TYPE_FP32 dims: [ 3 ] '
        "reshape { shape: [ 3 ] } } ]\n"
    )
    config = load_model_config(tmp_path / "adder")
    assert config.declaration is not None
    assert config.declaration.reshape_of("a") == (3,)


async def test_the_wrapper_keeps_the_inline_path_and_reshapes_both_ways(tmp_path: Path) -> None:
    model = image_repository(tmp_path)
    config = load_model_config(model)
    backend = load_backend(model / "1" / "model.onnx", config.runtime_options("image"), "image")
    try:
        declaration = config.declaration
        assert declaration is not None
        wrapped = with_reshapes(backend, declaration)
        assert isinstance(wrapped, ReshapedInlineBackend)
        data = {"data_0": picture(1)}
        assert wrapped.infer_now(data)["fc6_1"].shape == (3,)
        assert (await wrapped.infer(data))["fc6_1"].tolist() == pytest.approx([0.1, 0.9, 0.1])
        assert wrapped.signature.input("data_0") is not None
        plain = Declaration(
            batched=False, inputs=(DeclaredTensor("data_0", "TYPE_FP32", (3,)),), outputs=()
        )
        assert with_reshapes(backend, plain) is backend
        assert isinstance(ReshapedBackend(backend, declaration).signature.outputs[0].shape, tuple)
    finally:
        await backend.close()
