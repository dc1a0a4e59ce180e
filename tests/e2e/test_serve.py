"""End to end: the real ``tensorgate serve`` process, real HTTP, real clients."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton

from demo_models import digits_split
from support.app import TEST_SECRET, bearer, make_settings
from support.paths import DEMO_MODELS
from support.server_process import ServerProcess

SERVER_ENV = {"TENSORGATE_AUTH__SECRET": TEST_SECRET}
TOKEN = bearer(make_settings(DEMO_MODELS))


def auth() -> dict[str, str]:
    """A fresh header dict per call: tritonclient adds its own headers to the one it gets."""
    return {"Authorization": TOKEN}


pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess(
        ["--models", str(DEMO_MODELS), "--log-level", "info"], SERVER_ENV
    ) as process:
        yield process


def test_curl_style_prediction_returns_the_right_digit(server: ServerProcess) -> None:
    _, x_test, _, y_test = digits_split()
    body = {
        "inputs": [
            {"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": x_test[0].tolist()}
        ]
    }
    with httpx.Client(base_url=server.base_url, headers=auth()) as http:
        assert http.get("/v2/health/ready").status_code == 200
        response = http.post("/v2/models/digits/infer", json=body)
    assert response.status_code == 200
    label = next(o for o in response.json()["outputs"] if o["name"] == "label")
    assert label["data"] == [int(y_test[0])]


def test_tritonclient_json_mode_works_unchanged(server: ServerProcess) -> None:
    _, x_test, _, y_test = digits_split()
    client = triton.InferenceServerClient(url=server.base_url.removeprefix("http://"))
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("digits", headers=auth())
    metadata = client.get_model_metadata("digits", headers=auth())
    assert metadata["inputs"][0]["name"] == "pixels"

    batch = x_test[:32]
    tensor = triton.InferInput("pixels", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=False)
    outputs = [
        triton.InferRequestedOutput("label", binary_data=False),
        triton.InferRequestedOutput("probabilities", binary_data=False),
    ]
    result = client.infer(
        "digits", [tensor], outputs=outputs, request_id="t-1", timeout=5_000_000, headers=auth()
    )
    labels = result.as_numpy("label")
    assert labels is not None
    expected_labels, _ = ort.InferenceSession(str(DEMO_MODELS / "digits" / "1" / "model.onnx")).run(
        None, {"pixels": batch}
    )
    assert labels.tolist() == expected_labels.tolist()
    assert np.mean(labels == y_test[:32]) >= 0.9
    probabilities = result.as_numpy("probabilities")
    assert probabilities is not None
    assert probabilities.shape == (32, 10)
    assert result.get_response()["id"] == "t-1"


def test_tritonclient_binary_request_is_answered_in_binary(server: ServerProcess) -> None:
    client = triton.InferenceServerClient(url=server.base_url.removeprefix("http://"))
    _, x_test, _, y_test = digits_split()
    tensor = triton.InferInput("pixels", [8, 64], "FP32")
    tensor.set_data_from_numpy(x_test[:8], binary_data=True)
    result = client.infer("digits", [tensor], headers=auth())
    assert "binary_data_size" in result.get_response()["outputs"][0]["parameters"]
    labels = result.as_numpy("label")
    assert labels is not None
    assert np.mean(labels == y_test[:8]) >= 0.75


def test_sigterm_shuts_down_gracefully() -> None:
    with ServerProcess(["--models", str(DEMO_MODELS)], SERVER_ENV) as process:
        code = process.stop()
    # uvicorn re-raises the signal after a clean shutdown; serve turns that into 0.
    assert code == 0
    log = "".join(process.lines)
    assert "Application shutdown complete" in log
    assert "Traceback" not in log


def test_the_readme_curl_example_predicts_a_three(server: ServerProcess) -> None:
    readme = (DEMO_MODELS.parent / "README.md").read_text()
    body = readme.split("/v2/models/digits/infer -d '", 1)[1].split("'", 1)[0]
    with httpx.Client(base_url=server.base_url, headers=auth()) as http:
        response = http.post("/v2/models/digits/infer", content=body)
    assert response.status_code == 200
    assert response.json()["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [1], "data": [3]}
    ]
    # The access log (JSON: standard output is not a terminal) shows each answer.
    server.wait_for(re.compile(r'"method":"POST","path":"/v2/models/digits/infer","status":200'))


def raw_exchange(server: ServerProcess, request: bytes) -> bytes:
    """Send ``request`` on a fresh socket and read until the server closes it."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_responses_are_whole_on_kept_alive_and_closed_connections(server: ServerProcess) -> None:
    """Each response's head and body leave in one write (CoalescingTransport); both must
    still arrive whole, in order, before a ``Connection: close`` shuts the socket."""
    body = b'{"inputs":[{"name":"pixels","shape":[1,64],"datatype":"FP32","data":[' + (
        b",".join([b"0"] * 64) + b"]}]}"
    )
    head = (
        b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: " + TOKEN.encode() + b"\r\nContent-Length: %d\r\n" % len(body)
    )
    kept = head + b"\r\n" + body
    closing = head + b"Connection: close\r\n\r\n" + body
    answer = raw_exchange(server, kept + kept + closing)
    responses = answer.split(b"HTTP/1.1 ")[1:]
    assert len(responses) == 3
    for response in responses:
        response_head, response_body = response.split(b"\r\n\r\n", 1)
        assert response_head.startswith(b"200 OK")
        length = int(response_head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        assert len(response_body) == length
        assert json.loads(response_body)["model_name"] == "digits"
    assert b"connection: close" in responses[-1].lower()
