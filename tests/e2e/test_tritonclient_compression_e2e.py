"""End to end: the official ``tritonclient.http`` with ``request_compression_algorithm``
and ``response_compression_algorithm`` (gzip, deflate) on binary and JSON inferences
against a real ``tensorgate serve`` (issue 11, item 2)."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio

from demo_models import digits_split
from support.app import TEST_SECRET, bearer, make_settings
from support.paths import DEMO_MODELS
from support.server_process import ServerProcess

pytestmark = pytest.mark.e2e

TOKEN = bearer(make_settings(DEMO_MODELS))
DIGITS = DEMO_MODELS / "digits" / "1" / "model.onnx"
CAP = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root: Path = tmp_path_factory.mktemp("models")
    shutil.copytree(DEMO_MODELS / "digits", root / "digits")
    env = {"TENSORGATE_AUTH__SECRET": TEST_SECRET, "TENSORGATE_MAX_REQUEST_BODY_BYTES": str(CAP)}
    with ServerProcess(["--models", str(root)], env) as process:
        yield process


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("request_coding", ["gzip", "deflate", None])
@pytest.mark.parametrize("response_coding", ["gzip", "deflate", None])
def test_compression_both_ways(
    server: ServerProcess, binary: bool, request_coding: str | None, response_coding: str | None
) -> None:
    client = triton.InferenceServerClient(url=server.base_url.removeprefix("http://"))
    _, x_test, _, _ = digits_split()
    batch = x_test[:16]
    tensor = triton.InferInput("pixels", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput(name, binary_data=binary) for name in ("label", "probabilities")
    ]
    result = client.infer(
        "digits",
        [tensor],
        outputs=outputs,
        headers={"Authorization": TOKEN},
        request_compression_algorithm=request_coding,
        response_compression_algorithm=response_coding,
    )
    labels, probabilities = ort.InferenceSession(str(DIGITS)).run(None, {"pixels": batch})
    got_labels = result.as_numpy("label")
    got = result.as_numpy("probabilities")
    assert got_labels is not None
    assert got is not None
    assert got_labels.tolist() == labels.tolist()
    np.testing.assert_allclose(got, probabilities, rtol=1e-6)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_the_aio_client_compressing_both_ways(server: ServerProcess, coding: str) -> None:
    _, x_test, _, _ = digits_split()
    batch = x_test[:16]
    client = triton_aio.InferenceServerClient(url=server.base_url.removeprefix("http://"))
    try:
        tensor = triton_aio.InferInput("pixels", list(batch.shape), "FP32")
        tensor.set_data_from_numpy(batch)
        result = await client.infer(
            "digits",
            [tensor],
            headers={"Authorization": TOKEN},
            request_compression_algorithm=coding,
            response_compression_algorithm=coding,
        )
    finally:
        await client.close()
    (labels,) = ort.InferenceSession(str(DIGITS)).run(["label"], {"pixels": batch})
    got = result.as_numpy("label")
    assert got is not None
    assert got.tolist() == labels.tolist()


@pytest.mark.parametrize("path", ["/v2/models/digits/infer", "/models/digits/predict"])
def test_a_decompression_bomb_over_real_http_is_413_without_rss_growth(
    server: ServerProcess, path: str
) -> None:
    bomb = gzip.compress(b"0" * (100 * 1024 * 1024), compresslevel=1)  # 100 MB in ~0.5 MB
    assert len(bomb) < CAP
    peak_before = server.peak_rss_bytes()
    for _ in range(3):
        response = httpx.post(
            f"{server.base_url}{path}",
            content=bomb,
            headers={"Authorization": TOKEN, "Content-Encoding": "gzip"},
            timeout=30,
        )
        assert response.status_code == 413
        assert f"exceeds the limit of {CAP} bytes" in response.json()["error"]
    # Decompression stops at the 1 MiB cap: the server's peak RSS does not grow by
    # anything near the 100 MB the bomb holds.
    assert server.peak_rss_bytes() - peak_before < 16 * 1024 * 1024
    # The server still answers afterwards.
    assert httpx.get(f"{server.base_url}/v2/health/live", timeout=10).status_code == 200
