"""Inference over the protocol routes: correct predictions, every datatype, every bad input."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest

from demo_models import digits_split
from support.paths import DEMO_MODELS


def fp32_input(name: str, array: np.ndarray) -> dict[str, Any]:
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": "FP32",
        "data": array.ravel().tolist(),
    }


async def infer(client: httpx.AsyncClient, model: str, body: Any, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(f"/v2/models/{model}/infer", content=content, **kwargs)


async def test_digits_predictions_equal_onnxruntime_and_are_accurate(
    client: httpx.AsyncClient,
) -> None:
    _, x_test, _, y_test = digits_split()
    response = await infer(
        client, "digits", {"id": "batch-1", "inputs": [fp32_input("pixels", x_test)]}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("digits", "1", "batch-1")
    outputs = {out["name"]: out for out in body["outputs"]}
    session = ort.InferenceSession(str(DEMO_MODELS / "digits" / "1" / "model.onnx"))
    labels, probabilities = session.run(None, {"pixels": x_test})
    assert outputs["label"]["shape"] == [len(x_test)]
    assert outputs["label"]["datatype"] == "INT64"
    assert outputs["label"]["data"] == labels.tolist()
    assert outputs["probabilities"]["shape"] == [len(x_test), 10]
    np.testing.assert_allclose(
        np.array(outputs["probabilities"]["data"], np.float32).reshape(-1, 10), probabilities
    )
    accuracy = float(np.mean(np.array(outputs["label"]["data"]) == y_test))
    assert accuracy >= 0.95


async def test_mlp_nested_data_and_output_subset(client: httpx.AsyncClient) -> None:
    x = np.random.default_rng(7).standard_normal((3, 256)).astype(np.float32)
    body = {
        "inputs": [{"name": "input", "shape": [3, 256], "datatype": "FP32", "data": x.tolist()}],
        "outputs": [{"name": "logits", "parameters": {"binary_data": False}}],
        "parameters": {"timeout": 5_000_000},
    }
    response = await infer(client, "mlp", body)
    assert response.status_code == 200
    (logits,) = response.json()["outputs"]
    (expected,) = ort.InferenceSession(str(DEMO_MODELS / "mlp" / "1" / "model.onnx")).run(
        None, {"input": x}
    )
    np.testing.assert_allclose(
        np.array(logits["data"]).reshape(3, 10), expected, rtol=1e-5, atol=1e-6
    )
    assert "id" not in response.json()


async def test_versioned_route_and_no_content_type(client: httpx.AsyncClient) -> None:
    body = orjson.dumps({"inputs": [fp32_input("pixels", np.zeros((1, 64), np.float32))]})
    response = await client.post(
        "/v2/models/digits/versions/1/infer", content=body, headers={"content-type": ""}
    )
    assert response.status_code == 200
    response = await client.post(
        "/v2/models/digits/infer", content=body, headers={"content-type": "text/plain"}
    )
    assert response.status_code == 200


async def test_every_datatype_round_trips(client: httpx.AsyncClient) -> None:
    samples: dict[str, list[Any]] = {
        "BOOL": [True, False],
        "BYTES": ["tensor", "gaté"],
        "FP16": [0.5, -1.5],
        "FP32": [0.25, 3.5],
        "FP64": [1e-300, 2.5],
        "UINT64": [0, 2**64 - 1],
        "INT64": [-(2**63), 2**63 - 1],
        "INT8": [-128, 127],
        "UINT8": [0, 255],
        "INT16": [-1, 2],
        "UINT16": [0, 65535],
        "INT32": [-(2**31), 7],
        "UINT32": [0, 2**32 - 1],
    }
    inputs = [
        {"name": f"in_{dt.lower()}", "shape": [1, 2], "datatype": dt, "data": data}
        for dt, data in samples.items()
    ]
    response = await infer(client, "identity", {"inputs": inputs})
    assert response.status_code == 200, response.text
    outputs = {out["name"]: out for out in response.json()["outputs"]}
    for dt, data in samples.items():
        out = outputs[f"out_{dt.lower()}"]
        assert (out["datatype"], out["shape"], out["data"]) == (dt, [1, 2], data)


async def test_fixed_shape_model(client: httpx.AsyncClient) -> None:
    body = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [-1, 2, -3, 4]}]}
    response = await infer(client, "fixed", body)
    assert response.json()["outputs"][0]["data"] == [0.0, 2.0, 0.0, 4.0]
    body["inputs"][0]["shape"] = [1, 4]
    response = await infer(client, "fixed", body)
    assert response.status_code == 400
    assert "dimension 0 is 1; the model expects 2" in response.json()["error"]


def pixels(**overrides: Any) -> dict[str, Any]:
    tensor: dict[str, Any] = {
        "name": "pixels",
        "shape": [1, 64],
        "datatype": "FP32",
        "data": [0.0] * 64,
    }
    tensor.update(overrides)
    return {"inputs": [tensor]}


BAD_REQUESTS: list[tuple[str, Any, str]] = [
    ("empty body", b"", "request body is empty"),
    ("not json", b"{nope", "not valid JSON"),
    ("json array", b"[1, 2]", "must be a JSON object, got list"),
    ("no inputs", {"inputs": []}, "inputs: List should have at least 1 item"),
    ("missing inputs", {"id": "x"}, "inputs: Field required"),
    ("unknown field", {**pixels(), "inptus": []}, "inptus: Extra inputs are not permitted"),
    ("id not a string", {**pixels(), "id": 5}, "id: Input should be a valid string"),
    ("shape of strings", pixels(shape=["1", "64"]), "inputs[0] (pixels).shape[0]"),
    ("shape with a bool", pixels(shape=[True, 64]), "Input should be a valid integer"),
    ("data not a list", pixels(data="0.0"), "data must be a JSON array, got string"),
    ("missing datatype", pixels(datatype=None), "inputs[0] (pixels).datatype"),
    ("unknown input", pixels(name="pixel"), "unknown input 'pixel'"),
    (
        "wrong datatype",
        pixels(datatype="FP64"),
        "datatype FP64 does not match the model, which expects FP32",
    ),
    ("unknown datatype", pixels(datatype="FLOAT"), "unknown datatype 'FLOAT'"),
    ("wrong rank", pixels(shape=[64]), "has rank 1; the model expects rank 2"),
    ("wrong fixed dim", pixels(shape=[2, 32]), "dimension 1 is 32; the model expects 64"),
    ("count mismatch", pixels(shape=[2, 64]), "data has 64 elements; shape [2, 64] needs 128"),
    ("negative dim", pixels(shape=[-1, 64]), "negative dimension"),
    ("absurd dim", pixels(shape=[2**62, 64]), "absurd"),
    ("string element", pixels(data=["1"] + [0.0] * 63), "FP32 data must be numbers; got string"),
    ("bool element", pixels(data=[True] + [0.0] * 63), "got boolean"),
    ("null element", pixels(data=[None] + [0.0] * 63), "got null"),
    (
        "NaN literal",
        b'{"inputs":[{"name":"pixels","shape":[1,1],"datatype":"FP32","data":[NaN]}]}',
        "non-finite number",
    ),
    ("overflowing FP32", pixels(data=[1e300] + [0.0] * 63), "within FP32 range"),
    ("ragged nesting", pixels(data=[[0.0] * 63]), "nested data does not match shape [1, 64]"),
    (
        "more inputs than the model has",
        {"inputs": [pixels()["inputs"][0]] * 2},
        "request has 2 inputs; the model has 1 (pixels), so a request names at most 1",
    ),
    (
        "more outputs than the model has",
        {**pixels(), "outputs": [{"name": "label"}] * 3},
        "request has 3 outputs; the model has 2 (label, probabilities), so a request names at "
        "most 2",
    ),
    (
        "unknown output",
        {**pixels(), "outputs": [{"name": "labels"}]},
        "unknown output 'labels'; the model's outputs are: label, probabilities",
    ),
    (
        "duplicated output",
        {**pixels(), "outputs": [{"name": "label"}] * 2},
        "output 'label' is requested more than once",
    ),
    (
        "binary size on an input with data",
        pixels(parameters={"binary_data_size": 256}),
        "input 'pixels' has both data and parameters.binary_data_size",
    ),
    (
        "binary output flag not a boolean",
        {**pixels(), "outputs": [{"name": "label", "parameters": {"binary_data": "yes"}}]},
        "output 'label': parameters.binary_data must be true or false",
    ),
    (
        "binary by default not a boolean",
        {**pixels(), "parameters": {"binary_data_output": 1}},
        "parameters.binary_data_output must be true or false",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "message"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS]
)
async def test_bad_requests_get_400_naming_the_problem(
    client: httpx.AsyncClient, case: str, body: Any, message: str
) -> None:
    response = await infer(client, "digits", body)
    assert response.status_code == 400, response.text
    assert list(response.json()) == ["error"]
    assert message in response.json()["error"]


async def test_missing_input_is_named(client: httpx.AsyncClient) -> None:
    body = {"inputs": [{"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    response = await infer(client, "adder", body)
    assert response.status_code == 400
    assert "missing input 'b' (FP32, shape [-1, 3])" in response.json()["error"]


async def test_a_binary_header_cutting_the_json_short_is_named(client: httpx.AsyncClient) -> None:
    response = await infer(
        client, "digits", pixels(), headers={"Inference-Header-Content-Length": "80"}
    )
    assert response.status_code == 400
    message = response.json()["error"]
    assert "the JSON header (the first 80 bytes, as Inference-Header-Content-Length" in message


async def test_unknown_model_and_version_are_404(client: httpx.AsyncClient) -> None:
    assert (await infer(client, "nope", pixels())).status_code == 404
    response = await client.post(
        "/v2/models/digits/versions/3/infer", content=orjson.dumps(pixels())
    )
    assert response.status_code == 404


async def test_wrong_method_is_405_in_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/models/digits/infer")
    assert response.status_code == 405
    assert response.json() == {"error": "method not allowed on this route"}


async def test_runtime_failure_is_a_400_for_invalid_arguments_and_the_model_keeps_serving(
    client: httpx.AsyncClient,
) -> None:
    """The adder's two inputs have distinct symbolic dims here only through ONNX broadcasting."""
    good = {
        "inputs": [
            {"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
            {"name": "b", "shape": [1, 3], "datatype": "FP32", "data": [1, 1, 1]},
        ]
    }
    response = await infer(client, "adder", good)
    assert response.json()["outputs"][0]["data"] == [2.0, 3.0, 4.0]
