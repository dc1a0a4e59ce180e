"""Triton's model configuration and statistics extensions, read by the official tritonclient."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio
from tritonclient.utils import InferenceServerException

from support.app import TEST_SECRET, bearer, make_settings
from support.paths import DEMO_MODELS
from support.server_process import ServerProcess

TOKEN = bearer(make_settings(DEMO_MODELS))
GUARD_S = 30  # hang guard only

pytestmark = pytest.mark.e2e


def auth() -> dict[str, str]:
    """A fresh dict per call: tritonclient adds its own headers to the one it gets."""
    return {"Authorization": TOKEN}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess(
        ["--models", str(DEMO_MODELS)], {"TENSORGATE_AUTH__SECRET": TEST_SECRET}
    ) as process:
        yield process


@pytest.fixture
def client(server: ServerProcess) -> Iterator[triton.InferenceServerClient]:
    http = triton.InferenceServerClient(url=url(server))
    yield http
    http.close()


def url(server: ServerProcess) -> str:
    return server.base_url.removeprefix("http://")


def test_get_model_config_reads_the_config(client: triton.InferenceServerClient) -> None:
    config = client.get_model_config("digits", headers=auth())
    assert config["max_batch_size"] == 64
    assert config["input"] == [
        {
            "name": "pixels",
            "data_type": "TYPE_FP32",
            "dims": [64],
            "format": "FORMAT_NONE",
            "optional": False,
        }
    ]
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 2000
    assert client.get_model_config("digits", "1", headers=auth()) == config
    with pytest.raises(InferenceServerException):
        client.get_model_config("nope", headers=auth())


def test_get_inference_statistics_counts_inferences(
    client: triton.InferenceServerClient,
) -> None:
    before = client.get_inference_statistics("mlp", headers=auth())["model_stats"][0]
    tensor = triton.InferInput("input", [3, 256], "FP32")
    tensor.set_data_from_numpy(np.ones((3, 256), dtype=np.float32), binary_data=False)
    output = triton.InferRequestedOutput("logits", binary_data=False)
    for _ in range(2):
        client.infer("mlp", [tensor], outputs=[output], headers=auth())
    after = client.get_inference_statistics("mlp", "1", headers=auth())["model_stats"][0]
    assert after["inference_count"] - before["inference_count"] == 6
    assert after["execution_count"] - before["execution_count"] == 2
    success = after["inference_stats"]["success"]
    assert success["count"] - before["inference_stats"]["success"]["count"] == 2
    assert success["ns"] > before["inference_stats"]["success"]["ns"]
    assert after["last_inference"] > 0
    every = client.get_inference_statistics(headers=auth())["model_stats"]
    assert sorted(s["name"] for s in every) == ["digits", "mlp"]


def test_aio_client_reads_both_extensions(server: ServerProcess) -> None:
    async def scenario() -> None:
        client = triton_aio.InferenceServerClient(url=url(server))
        try:
            config = await client.get_model_config("mlp", headers=auth())
            stats = await client.get_inference_statistics("mlp", headers=auth())
            metadata = await client.get_server_metadata()
        finally:
            await client.close()
        assert config["name"] == "mlp"
        assert stats["model_stats"][0]["name"] == "mlp"
        assert {"model_configuration", "statistics"} <= set(metadata["extensions"])

    asyncio.run(asyncio.wait_for(scenario(), GUARD_S))
