"""End to end: the official ``tritonclient.http`` on its defaults (binary tensors in and
out) against a real ``tensorgate serve``, and malformed binary requests over real HTTP."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio

from demo_models import digits_split
from support.app import bearer, make_settings
from support.onnx_models import identity_model, write_model
from support.paths import DEMO_MODELS
from support.server_process import ServerProcess, serving

pytestmark = pytest.mark.e2e

TOKEN = bearer(make_settings(DEMO_MODELS))
DIGITS = DEMO_MODELS / "digits" / "1" / "model.onnx"


def auth() -> dict[str, str]:
    """A fresh dict per call: tritonclient adds its own headers to the one it gets."""
    return {"Authorization": TOKEN}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root: Path = tmp_path_factory.mktemp("models")
    for name in ("digits", "mlp"):
        shutil.copytree(DEMO_MODELS / name, root / name)
    write_model(root, "identity", identity_model())
    with serving(root) as process:
        yield process


@pytest.fixture
def client(server: ServerProcess) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=server.base_url.removeprefix("http://"))


def pixels(batch: np.ndarray) -> triton.InferInput:
    tensor = triton.InferInput("pixels", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch)  # binary_data=True, the client's default
    return tensor


def test_defaults_binary_in_and_out_with_no_output_named(
    client: triton.InferenceServerClient,
) -> None:
    _, x_test, _, y_test = digits_split()
    batch = x_test[:32]
    result = client.infer("digits", [pixels(batch)], headers=auth())
    labels, probabilities = ort.InferenceSession(str(DIGITS)).run(None, {"pixels": batch})
    response = result.get_response()
    assert {out["name"] for out in response["outputs"]} == {"label", "probabilities"}
    assert all("binary_data_size" in out["parameters"] for out in response["outputs"])
    got_labels = result.as_numpy("label")
    assert got_labels is not None
    assert got_labels.tolist() == labels.tolist()
    assert np.mean(got_labels == y_test[:32]) >= 0.9
    got = result.as_numpy("probabilities")
    assert got is not None
    np.testing.assert_allclose(got, probabilities, rtol=1e-6)


async def test_the_aio_client_on_its_defaults(server: ServerProcess) -> None:
    _, x_test, _, y_test = digits_split()
    client = triton_aio.InferenceServerClient(url=server.base_url.removeprefix("http://"))
    try:
        tensor = triton_aio.InferInput("pixels", [16, 64], "FP32")
        tensor.set_data_from_numpy(x_test[:16])
        result = await client.infer("digits", [tensor], headers=auth())
    finally:
        await client.close()
    labels = result.as_numpy("label")
    assert labels is not None
    assert np.mean(labels == y_test[:16]) >= 0.75


def test_named_outputs_binary_and_json_mixed(client: triton.InferenceServerClient) -> None:
    x = np.random.default_rng(3).standard_normal((4, 256)).astype(np.float32)
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer(
        "mlp",
        [tensor],
        outputs=[triton.InferRequestedOutput("logits")],  # binary_data=True by default
        request_id="r-7",
        headers=auth(),
    )
    logits = result.as_numpy("logits")
    assert logits is not None
    assert logits.shape == (4, 10)
    assert result.get_response()["id"] == "r-7"

    json_in = triton.InferInput("input", list(x.shape), "FP32")
    json_in.set_data_from_numpy(x, binary_data=False)
    again = client.infer(
        "mlp",
        [json_in],
        outputs=[triton.InferRequestedOutput("logits", binary_data=False)],
        headers=auth(),
    )
    assert "data" in again.get_response()["outputs"][0]
    np.testing.assert_allclose(again.as_numpy("logits"), logits, rtol=1e-5)

    binary_out = client.infer("mlp", [json_in], headers=auth())  # JSON in, binary out
    np.testing.assert_allclose(binary_out.as_numpy("logits"), logits, rtol=1e-5)


def test_bytes_int64_bool_and_more_binary_and_json_in_one_request(
    client: triton.InferenceServerClient,
) -> None:
    arrays = {
        "bytes": np.array([[b"ab", "é".encode()], [b"", b"xyz"]], dtype=object),
        "int64": np.array([[1, -(2**40)], [3, 2**62]], np.int64),
        "bool": np.array([[True, False], [False, True]]),
        "fp16": np.array([[0.5, -1], [2, 3]], np.float16),
        "fp64": np.array([[0.1, 1e300], [-2, 3]], np.float64),
        "int32": np.array([[1, -2], [3, 2**31 - 1]], np.int32),
        "uint8": np.array([[0, 255], [7, 8]], np.uint8),
    }
    inputs = []
    for index, (datatype, array) in enumerate(sorted(arrays.items())):
        tensor = triton.InferInput(f"in_{datatype}", [2, 2], datatype.upper())
        tensor.set_data_from_numpy(array, binary_data=index % 2 == 0)  # half of them JSON
        inputs.append(tensor)
    model_inputs = {
        spec["name"] for spec in client.get_model_metadata("identity", headers=auth())["inputs"]
    }
    for missing in sorted(model_inputs - {f"in_{dt}" for dt in arrays}):
        datatype = missing.removeprefix("in_").upper()
        tensor = triton.InferInput(missing, [2, 2], datatype)
        tensor.set_data_from_numpy(np.zeros((2, 2), _numpy_of(datatype)))
        inputs.append(tensor)
    outputs = [
        triton.InferRequestedOutput(f"out_{datatype}", binary_data=index % 3 != 0)
        for index, datatype in enumerate(sorted(arrays))
    ]
    result = client.infer("identity", inputs, outputs=outputs, headers=auth())
    for datatype, array in arrays.items():
        got = result.as_numpy(f"out_{datatype}")
        assert got is not None, datatype
        if datatype == "bytes":
            assert [bytes(v) for v in got.ravel()] == list(array.ravel()), datatype
        else:
            np.testing.assert_array_equal(got, array, err_msg=datatype)


def _numpy_of(datatype: str) -> type:
    return {
        "UINT16": np.uint16,
        "UINT32": np.uint32,
        "UINT64": np.uint64,
        "INT8": np.int8,
        "INT16": np.int16,
        "FP32": np.float32,
    }[datatype]


def test_malformed_binary_requests_are_400_and_the_server_stays_healthy(
    server: ServerProcess,
) -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "pixels",
                    "shape": [1, 64],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 256},
                }
            ]
        }
    )
    cases = [
        (header + b"\0" * 100, str(len(header)), "input 'pixels': binary_data_size 256 runs past"),
        (header + b"\0" * 256, str(len(header) + 999), "past the end of the"),
        (header + b"\0" * 256, "-1", "must be a non-negative integer"),
    ]
    with httpx.Client(base_url=server.base_url, headers=auth(), timeout=10) as http:
        for body, length, message in cases:
            response = http.post(
                "/v2/models/digits/infer",
                content=body,
                headers={"Inference-Header-Content-Length": length},
            )
            assert response.status_code == 400, response.text
            assert message in response.json()["error"]
        good = http.post(
            "/v2/models/digits/infer",
            content=header + np.zeros(64, np.float32).tobytes(),
            headers={"Inference-Header-Content-Length": str(len(header))},
        )
        assert good.status_code == 200
        assert good.headers["content-type"] == "application/json"
        binary_header = orjson.dumps(
            {**orjson.loads(header), "parameters": {"binary_data_output": True}}
        )
        binary = http.post(
            "/v2/models/digits/infer",
            content=binary_header + np.zeros(64, np.float32).tobytes(),
            headers={"Inference-Header-Content-Length": str(len(binary_header))},
        )
        assert binary.status_code == 200
        assert binary.headers["content-type"] == "application/octet-stream"
        split = int(binary.headers["inference-header-content-length"])
        outputs = orjson.loads(binary.content[:split])["outputs"]
        sizes = [out["parameters"]["binary_data_size"] for out in outputs]
        assert sorted(sizes) == [8, 40]  # one INT64 label, ten FP32 probabilities
        assert len(binary.content) == split + 48
        assert http.get("/v2/health/ready").status_code == 200
