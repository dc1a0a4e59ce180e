"""The model repository extension and the unknown-model errors, driven by tritonclient.http."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from support.app import TEST_SECRET, bearer, make_settings
from support.paths import DEMO_MODELS
from support.server_process import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo models, so that tests may change it."""
    root = tmp_path_factory.mktemp("repository")
    for model in ("mlp", "digits"):
        shutil.copytree(DEMO_MODELS / model, root / model)
    return root


@pytest.fixture(scope="module")
def server(repository: Path) -> Iterator[ServerProcess]:
    with ServerProcess(
        ["--models", str(repository)], {"TENSORGATE_AUTH__SECRET": TEST_SECRET}
    ) as process:
        yield process


@pytest.fixture
def client(server: ServerProcess) -> Iterator[triton.InferenceServerClient]:
    http = triton.InferenceServerClient(url=server.base_url.removeprefix("http://"))
    yield http
    http.close()


def auth(repository: Path) -> dict[str, str]:
    """A fresh header dict with a token holding every scope, ``admin`` included."""
    return {"Authorization": bearer(make_settings(repository))}


def infer_mlp(client: triton.InferenceServerClient, headers: dict[str, str]) -> np.ndarray:
    tensor = triton.InferInput("input", [1, 256], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 256), dtype=np.float32), binary_data=False)
    output = triton.InferRequestedOutput("logits", binary_data=False)
    result = client.infer("mlp", [tensor], outputs=[output], headers=headers)
    return result.as_numpy("logits")  # type: ignore[no-any-return]


def test_unload_then_load_with_the_official_client(
    client: triton.InferenceServerClient, repository: Path
) -> None:
    headers = auth(repository)
    index = client.get_model_repository_index(headers=headers)
    assert {"name": "mlp", "version": "1", "state": "READY", "reason": "", "labels": []} in index
    before = infer_mlp(client, headers)

    client.unload_model("mlp", headers=auth(repository))
    assert not client.is_model_ready("mlp", headers=auth(repository))
    with pytest.raises(InferenceServerException) as unknown:
        infer_mlp(client, auth(repository))
    assert unknown.value.message().startswith("Request for unknown model: 'mlp' is not found")
    names = {entry["name"] for entry in client.get_model_repository_index(headers=headers)}
    assert "mlp" not in names

    client.load_model("mlp", headers=auth(repository))
    assert client.is_model_ready("mlp", headers=auth(repository))
    assert np.array_equal(infer_mlp(client, auth(repository)), before)


def test_load_with_a_config_and_its_refusals(
    client: triton.InferenceServerClient, repository: Path
) -> None:
    config = json.dumps({"max_batch_size": 8, "dynamic_batching": {}})
    client.load_model("digits", headers=auth(repository), config=config)
    assert client.is_model_ready("digits", headers=auth(repository))
    with pytest.raises(InferenceServerException) as refused:
        client.load_model(
            "digits", headers=auth(repository), config=json.dumps({"sequence_batching": {}})
        )
    assert "config.sequence_batching: sequence batching is not served yet" in (
        refused.value.message()
    )
    assert client.is_model_ready("digits", headers=auth(repository))  # still serving


def test_unknown_version_uses_tritons_wording(
    client: triton.InferenceServerClient, repository: Path
) -> None:
    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("digits", "99", headers=auth(repository))
    assert unknown.value.message().startswith(
        "Request for unknown model: 'digits' version 99 is not found"
    )


def test_shared_memory_answers_as_triton_before_any_region_and_refuses_a_missing_object(
    client: triton.InferenceServerClient, repository: Path
) -> None:
    # What simple_http_shm_client.py and simple_http_cudashm_client.py do first.
    client.unregister_system_shared_memory(headers=auth(repository))
    client.unregister_cuda_shared_memory(headers=auth(repository))
    assert client.get_system_shared_memory_status(headers=auth(repository)) == []
    assert client.get_cuda_shared_memory_status(headers=auth(repository)) == []
    with pytest.raises(InferenceServerException) as refused:
        client.register_system_shared_memory(
            "input_data", "/input_simple", 64, headers=auth(repository)
        )
    message = refused.value.message()
    assert message.startswith("failed to register system shared memory region 'input_data': ")
    assert "Unable to open shared memory region: '/input_simple'" in message
    with pytest.raises(InferenceServerException) as missing:
        client.get_cuda_shared_memory_status("output_data", headers=auth(repository))
    assert missing.value.message() == "Unable to find cuda shared memory region: 'output_data'"


def test_load_needs_the_admin_scope(client: triton.InferenceServerClient, repository: Path) -> None:
    reader = {"Authorization": bearer(make_settings(repository), ("models:read",))}
    with pytest.raises(InferenceServerException) as forbidden:
        client.load_model("mlp", headers=reader)
    assert forbidden.value.status() == "403"


def test_reloads_while_requests_flow_fail_none(server: ServerProcess, repository: Path) -> None:
    stop = threading.Event()
    url = server.base_url.removeprefix("http://")

    def flow() -> tuple[int, list[str]]:
        sent, failures = 0, []
        http = triton.InferenceServerClient(url=url)
        try:
            while not stop.is_set():
                try:
                    infer_mlp(http, auth(repository))
                except InferenceServerException as exc:
                    failures.append(exc.message())
                sent += 1
        finally:
            http.close()
        return sent, failures

    with ThreadPoolExecutor(max_workers=4) as pool:
        flows = [pool.submit(flow) for _ in range(4)]
        admin = triton.InferenceServerClient(url=url)
        try:
            for _ in range(5):
                admin.load_model("mlp", headers=auth(repository))
        finally:
            admin.close()
            stop.set()
        results = [f.result(timeout=60) for f in flows]
    assert sum(sent for sent, _ in results) > 0
    assert [message for _, failures in results for message in failures] == []
