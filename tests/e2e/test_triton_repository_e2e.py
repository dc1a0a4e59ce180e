"""A Triton model repository served as it is: Triton's example models with their
``config.pbtxt`` (no config.yaml), called the way Triton's own client examples call them
(simple_http_infer_client.py, simple_grpc_infer_client.py, simple_grpc_string_infer_client.py,
simple_http_model_control.py, and image_client.py's checks and classification request against
an image model configured as densenet_onnx is), over HTTP and gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from support.grpc_calls import TOKEN, Served, serve
from support.triton_examples import (
    EXAMPLES,
    IMAGE_CLASSES,
    IMAGE_SIDE,
    image_repository,
    triton_example_repository,
)

pytestmark = pytest.mark.e2e

HEADERS = {"authorization": TOKEN}  # gRPC metadata keys are lower case; HTTP accepts both
NUMPY = {"simple": np.int32, "simple_int8": np.int8}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = triton_example_repository(tmp_path_factory.mktemp("triton"))
    image_repository(root)
    assert not list(root.glob("*/config.yaml"))
    return root


@pytest.fixture(scope="module")
def served(repo: Path) -> Iterator[Served]:
    process, port = serve(repo)
    with process:
        yield Served(process, port)


def http_client(served: Served) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(served.process.base_url.removeprefix("http://"))


def example_inputs(module: Any, model: str) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """INPUT0 = 0..15 and INPUT1 = 1s, one row, as the examples send them."""
    first = np.arange(16, dtype=np.int32).reshape(1, 16)
    second = np.ones((1, 16), dtype=np.int32)
    if model == "simple_string":
        arrays = [first.astype(np.bytes_).astype(object), second.astype(np.bytes_).astype(object)]
        datatype = "BYTES"
    else:
        arrays = [first.astype(NUMPY[model]), second.astype(NUMPY[model])]
        datatype = "INT32" if model == "simple" else "INT8"
    inputs = []
    for name, array in zip(("INPUT0", "INPUT1"), arrays, strict=True):
        tensor = module.InferInput(name, [1, 16], datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs, first, second


def check_answer(result: Any, model: str, first: np.ndarray, second: np.ndarray) -> None:
    total, difference = result.as_numpy("OUTPUT0"), result.as_numpy("OUTPUT1")
    if model == "simple_string":
        total = np.array([int(v) for v in total.ravel()]).reshape(1, 16)
        difference = np.array([int(v) for v in difference.ravel()]).reshape(1, 16)
    np.testing.assert_array_equal(total, first + second)
    np.testing.assert_array_equal(difference, first - second)


@pytest.mark.parametrize("model", sorted(EXAMPLES))
def test_the_http_example_runs_unchanged(served: Served, model: str) -> None:
    client = http_client(served)
    assert client.is_model_ready(model, headers=dict(HEADERS))
    inputs, first, second = example_inputs(httpclient, model)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=True) for n in ("OUTPUT0", "OUTPUT1")]
    result = client.infer(model, inputs, outputs=outputs, headers=dict(HEADERS))
    check_answer(result, model, first, second)
    config = client.get_model_config(model, headers=dict(HEADERS))
    assert config["max_batch_size"] == 8
    assert [(t["name"], t["dims"]) for t in config["input"]] == [
        ("INPUT0", [16]),
        ("INPUT1", [16]),
    ]
    assert config["input"][0]["data_type"] == EXAMPLES[model][1]


@pytest.mark.parametrize("model", sorted(EXAMPLES))
def test_the_grpc_example_runs_unchanged(served: Served, model: str) -> None:
    with grpcclient.InferenceServerClient(served.url) as client:
        assert client.is_model_ready(model, headers=HEADERS)
        inputs, first, second = example_inputs(grpcclient, model)
        outputs = [grpcclient.InferRequestedOutput(n) for n in ("OUTPUT0", "OUTPUT1")]
        result = client.infer(model, inputs, outputs=outputs, headers=HEADERS)
        check_answer(result, model, first, second)
        config = client.get_model_config(model, headers=HEADERS, as_json=True)["config"]
        assert int(config["max_batch_size"]) == 8


def test_model_control_answers_in_tritons_words(served: Served, repo: Path) -> None:
    broken = repo / "broken"
    (broken / "1").mkdir(parents=True)
    (broken / "1" / "model.onnx").write_bytes((repo / "simple" / "1" / "model.onnx").read_bytes())
    (broken / "config.pbtxt").write_text("max_batch_size: eight\n")
    client = http_client(served)
    with pytest.raises(InferenceServerException) as caught:
        client.load_model("broken", headers=dict(HEADERS))
    assert "failed to load 'broken'" in caught.value.message()
    (broken / "config.pbtxt").write_text('name: "broken"\nmax_batch_size: 8\n')
    client.load_model("broken", headers=dict(HEADERS))
    assert client.is_model_ready("broken", headers=dict(HEADERS))
    with grpcclient.InferenceServerClient(served.url) as grpc_client:
        with pytest.raises(InferenceServerException) as missing:
            grpc_client.load_model("unknown_model", headers=HEADERS)
        assert missing.value.status() == "StatusCode.INTERNAL"
        assert "failed to load 'unknown_model', failed to poll from model repository" in (
            missing.value.message()
        )


def _image_request(module: Any) -> tuple[list[Any], list[Any]]:
    """What image_client.py sends for one NCHW image with ``-c 2``: the green channel
    brightest, so ``green`` ranks first."""
    image = np.full((3, IMAGE_SIDE, IMAGE_SIDE), 0.2, dtype=np.float32)
    image[1] = 0.7
    tensor = module.InferInput("data_0", [3, IMAGE_SIDE, IMAGE_SIDE], "FP32")
    tensor.set_data_from_numpy(image)
    return [tensor], [module.InferRequestedOutput("fc6_1", class_count=2)]


def _check_as_image_client_does(metadata: dict[str, Any], config: dict[str, Any]) -> None:
    """image_client.py's parse_model: one input and one FP32 output, an input of rank 3
    (no batch axis), and a format it can lay an image out in."""
    assert len(metadata["inputs"]) == 1
    assert len(metadata["outputs"]) == 1
    assert metadata["outputs"][0]["datatype"] == "FP32"
    assert config.get("max_batch_size", 0) == 0
    assert len(metadata["inputs"][0]["shape"]) == 3
    assert config["input"][0]["format"] == "FORMAT_NCHW"
    assert [int(d) for d in config["input"][0]["reshape"]["shape"]] == [1, 3, 8, 8]


def test_image_client_classifies_with_a_reshaped_model(served: Served) -> None:
    expected = [f"0.700000:1:{IMAGE_CLASSES[1]}", f"0.200000:0:{IMAGE_CLASSES[0]}"]
    client = http_client(served)
    metadata = client.get_model_metadata("image", headers=dict(HEADERS))
    _check_as_image_client_does(metadata, client.get_model_config("image", headers=dict(HEADERS)))
    inputs, outputs = _image_request(httpclient)
    result = client.infer("image", inputs, outputs=outputs, headers=dict(HEADERS))
    assert [v.decode() for v in result.as_numpy("fc6_1")] == expected
    with grpcclient.InferenceServerClient(served.url) as grpc_client:
        metadata = grpc_client.get_model_metadata("image", headers=HEADERS, as_json=True)
        config = grpc_client.get_model_config("image", headers=HEADERS, as_json=True)["config"]
        _check_as_image_client_does(metadata, config)
        inputs, outputs = _image_request(grpcclient)
        result = grpc_client.infer("image", inputs, outputs=outputs, headers=HEADERS)
        assert [v.decode() for v in result.as_numpy("fc6_1")] == expected


def test_grpc_shared_memory_answers_as_triton_before_any_region_and_refuses_a_missing_object(
    served: Served,
) -> None:
    with grpcclient.InferenceServerClient(served.url) as client:
        client.unregister_system_shared_memory(headers=HEADERS)
        client.unregister_cuda_shared_memory(headers=HEADERS)
        assert not client.get_system_shared_memory_status(headers=HEADERS).regions
        assert not client.get_cuda_shared_memory_status(headers=HEADERS).regions
        with pytest.raises(InferenceServerException) as refused:
            client.register_system_shared_memory("input_data", "/input_simple", 64, headers=HEADERS)
        assert refused.value.status() == "StatusCode.INVALID_ARGUMENT"
        with pytest.raises(InferenceServerException) as missing:
            client.get_system_shared_memory_status("input_data", headers=HEADERS)
        assert missing.value.status() == "StatusCode.NOT_FOUND"
        assert "Unable to find system shared memory region: 'input_data'" in missing.value.message()
