"""Each ``http_protocol`` serves the same answers through a real uvicorn socket.

The coalescing protocol is the default and the rest of the e2e suite runs on it; here
every implementation answers keep-alive inference on both route families, an error, and
a method the inference paths do not take, so switching the fenced trick off is safe.
"""

from __future__ import annotations

import httpx
import pytest

from support.app import TEST_SECRET, bearer, make_settings
from support.paths import DEMO_MODELS
from support.server_process import ServerProcess

pytestmark = pytest.mark.e2e

PIXELS = [0.0] * 20 + [16.0] * 24 + [0.0] * 20


@pytest.mark.parametrize("protocol", ["coalescing", "httptools", "h11"])
def test_every_http_implementation_answers_the_same(protocol: str) -> None:
    args = ["--models", str(DEMO_MODELS), "--log-level", "info", "--http", protocol]
    headers = {"Authorization": bearer(make_settings(DEMO_MODELS))}
    protocol_body = {
        "inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": PIXELS}],
        "outputs": [{"name": "label"}],
    }
    with (
        ServerProcess(args, {"TENSORGATE_AUTH__SECRET": TEST_SECRET}) as server,
        httpx.Client(base_url=server.base_url, headers=headers) as http,
    ):
        labels = set()
        for _ in range(20):  # one keep-alive connection: every answer must be framed right
            infer = http.post("/v2/models/digits/infer", json=protocol_body)
            typed = http.post("/models/digits/predict", json={"inputs": {"pixels": [PIXELS]}})
            assert infer.status_code == typed.status_code == 200
            labels.add(infer.json()["outputs"][0]["data"][0])
            labels.add(typed.json()["outputs"]["label"][0])
        assert len(labels) == 1
        wrong = http.post("/models/digits/predict", json={"inputs": {"pixels": [[1.0]]}})
        assert wrong.status_code == 400
        assert "pixels" in wrong.json()["error"]
        method = http.get("/v2/models/digits/infer")
        assert method.status_code == 405
        assert method.headers["allow"] == "POST"
        assert http.get("/v2/health/ready").json() == {"ready": True}
