"""The model repository extension over ASGI: load, reload, unload, the index, its scope."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends.base import RuntimeOptions
from backends.errors import ModelLoadError
from gateway.auth.principal import MODELS_INFER, MODELS_READ
from support.app import bearer, make_settings, open_client
from support.fake_backend import FakeBackend, FakeLoader

GUARD_S = 10


def infer_body(tag: float = 1.0, rows: int = 1) -> dict[str, Any]:
    """One echo request of ``rows`` rows of width 4."""
    data = [tag] * 4 * rows
    return {"inputs": [{"name": "x", "shape": [rows, 4], "datatype": "FP32", "data": data}]}


def add_model(root: Path, name: str, *versions: int, config: str = "") -> None:
    """``root/name/<v>/model.onnx`` for each version (the FakeLoader never reads it)."""
    for version in versions:
        (root / name / str(version)).mkdir(parents=True, exist_ok=True)
        (root / name / str(version) / "model.onnx").write_bytes(b"")
    if config:
        (root / name / "config.yaml").write_text(config)


class SignallingLoader(FakeLoader):
    """A FakeLoader that sets ``loaded`` (from the loading thread) after each load."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded = threading.Event()
        self.fail_with: Exception | None = None

    def __call__(self, path: Path, options: RuntimeOptions, label: str) -> FakeBackend:
        """Load as FakeLoader does (or raise ``fail_with``), then signal."""
        if self.fail_with is not None:
            raise self.fail_with
        backend = super().__call__(path, options, label)
        self.loaded.set()
        return backend


@pytest.fixture
def fakes() -> SignallingLoader:
    return SignallingLoader()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    add_model(tmp_path, "echo", 1)
    return tmp_path


@pytest.fixture
async def client(root: Path, fakes: FakeLoader) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(make_settings(root), loader=fakes) as http:
        yield http


async def test_server_metadata_lists_the_repository_extension(client: httpx.AsyncClient) -> None:
    assert "model_repository" in (await client.get("/v2")).json()["extensions"]


async def test_a_model_added_to_the_directory_loads_and_serves(
    client: httpx.AsyncClient, root: Path
) -> None:
    # Fails before: the load route was 404 "no such route".
    add_model(root, "later", 1, 2)
    assert (await client.post("/v2/models/later/infer", json=infer_body())).status_code == 404
    loaded = await client.post("/v2/repository/models/later/load", json={})
    assert (loaded.status_code, loaded.content) == (200, b"")
    assert (await client.post("/v2/models/later/infer", json=infer_body())).status_code == 200
    index = (await client.post("/v2/repository/index")).json()
    assert {"name": "later", "version": "2", "state": "READY", "reason": "", "labels": []} in index
    ready_only = await client.post("/v2/repository/index", json={"ready": True})
    assert all(entry["state"] == "READY" for entry in ready_only.json())


async def test_unload_drains_the_queue_then_the_model_is_unknown(
    client: httpx.AsyncClient, fakes: FakeLoader
) -> None:
    backend = fakes.backends["echo"]
    backend.hold = True
    held = asyncio.create_task(client.post("/v2/models/echo/infer", json=infer_body()))
    await asyncio.wait_for(backend.started.wait(), GUARD_S)
    unload = asyncio.create_task(client.post("/v2/repository/models/echo/unload", json={}))
    await asyncio.sleep(0)  # let the unload start; it must wait for the held batch
    assert not unload.done()
    backend.release.set()
    assert (await asyncio.wait_for(held, GUARD_S)).status_code == 200
    assert (await asyncio.wait_for(unload, GUARD_S)).status_code == 200
    assert backend.closed
    gone = await client.get("/v2/models/echo")
    assert gone.status_code == 404
    assert gone.json()["error"] == "Request for unknown model: 'echo' is not found"
    again = await client.post("/v2/repository/models/echo/unload")
    assert again.status_code == 404
    assert (await client.post("/v2/repository/models/echo/load")).status_code == 200
    assert (await client.post("/v2/models/echo/infer", json=infer_body())).status_code == 200


async def test_a_reload_while_requests_flow_fails_none(
    client: httpx.AsyncClient, fakes: SignallingLoader
) -> None:
    old = fakes.backends["echo"]
    old.hold = True
    held = asyncio.create_task(client.post("/v2/models/echo/infer", json=infer_body()))
    await asyncio.wait_for(old.started.wait(), GUARD_S)
    fakes.loaded.clear()
    reload = asyncio.create_task(client.post("/v2/repository/models/echo/load"))
    assert await asyncio.to_thread(fakes.loaded.wait, GUARD_S)
    # Whichever backend these reach (the old one's queue or the new one), none fails.
    during = [
        asyncio.create_task(client.post("/v2/models/echo/infer", json=infer_body(i)))
        for i in range(8)
    ]
    assert not reload.done()  # the old backend is still draining its held batch
    old.release.set()
    answers = await asyncio.wait_for(asyncio.gather(held, reload, *during), GUARD_S)
    assert [r.status_code for r in answers] == [200] * 10
    assert old.closed
    assert fakes.backends["echo"] is not old
    assert not fakes.backends["echo"].closed


async def test_a_config_in_the_body_overrides_config_yaml(
    client: httpx.AsyncClient, fakes: FakeLoader
) -> None:
    config = {
        "name": "echo",
        "backend": "onnxruntime",
        "max_batch_size": 2,
        "dynamic_batching": {"max_queue_delay_microseconds": 0},
        "instance_group": [{"count": 1, "kind": "KIND_CPU"}],
        "version_policy": {"latest": {"num_versions": 1}},
    }
    body = {"parameters": {"config": json.dumps(config)}}
    assert (await client.post("/v2/repository/models/echo/load", json=body)).status_code == 200
    answer = await client.post("/v2/models/echo/infer", json=infer_body(rows=3))
    assert answer.status_code == 200
    assert fakes.backends["echo"].batch_sizes == [2, 1]  # split at the new max_batch_size


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            {
                "parameters": {
                    "config": json.dumps({"input": [{"name": "x", "is_shape_tensor": True}]})
                }
            },
            "config.input[0].is_shape_tensor",
        ),
        ({"parameters": {"config": json.dumps({"platform": "tensorrt_plan"})}}, "platform"),
        ({"parameters": {"config": json.dumps({"name": "other"})}}, "config.name"),
        ({"parameters": {"config": json.dumps({"max_batch_size": -1})}}, "max_batch_size"),
        ({"parameters": {"config": "{not json"}}, "parameters.config"),
        (
            {"parameters": {"config": json.dumps({"dynamic_batching": {"priority_levels": 2}})}},
            "config.dynamic_batching.priority_levels",
        ),
        ({"parameters": {"file:1/model.onnx": "AAAA"}}, "file:1/model.onnx"),
        ({"parameters": {"poll": True}}, "poll"),
    ],
)
async def test_what_does_not_map_is_a_400_naming_it(
    client: httpx.AsyncClient, fakes: FakeLoader, body: dict[str, Any], named: str
) -> None:
    before = fakes.backends["echo"]
    response = await client.post("/v2/repository/models/echo/load", json=body)
    assert response.status_code == 400
    assert named in response.json()["error"]
    assert fakes.backends["echo"] is before  # nothing was loaded; the old one serves
    assert (await client.post("/v2/models/echo/infer", json=infer_body())).status_code == 200


@pytest.mark.parametrize("name", ["bad%20name", ".hidden", "a%2Fb", "x" * 129])
async def test_an_invalid_model_name_is_400_before_the_filesystem(
    client: httpx.AsyncClient, name: str
) -> None:
    response = await client.post(f"/v2/repository/models/{name}/load")
    assert response.status_code in (400, 404)  # %2F may not reach the route at all
    if response.status_code == 400:
        assert "is not a valid model name" in response.json()["error"]


async def test_loading_what_the_repository_lacks_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/repository/models/absent/load")
    assert response.status_code == 400
    # Triton's words, which model-control clients match on.
    assert response.json()["error"].startswith(
        "failed to load 'absent', failed to poll from model repository"
    )


async def test_load_and_unload_need_the_admin_scope(client: httpx.AsyncClient, root: Path) -> None:
    settings = make_settings(root)
    reader = {"Authorization": bearer(settings, (MODELS_READ, MODELS_INFER))}
    for action in ("load", "unload"):
        response = await client.post(f"/v2/repository/models/echo/{action}", headers=reader)
        assert response.status_code == 403
        assert "admin" in response.json()["error"]
    assert (await client.post("/v2/repository/index", headers=reader)).status_code == 200


@pytest.mark.parametrize(
    ("extension", "kind"), [("systemsharedmemory", "system"), ("cudasharedmemory", "cuda")]
)
async def test_shared_memory_routes_answer_as_triton_with_no_region(
    client: httpx.AsyncClient, extension: str, kind: str
) -> None:
    # Triton's shared-memory examples unregister everything first: that must succeed.
    # Before, every route answered 400 "not supported".
    status = await client.get(f"/v2/{extension}/status")
    assert (status.status_code, status.json()) == (200, [])
    for tail in ("unregister", "region/r0/unregister"):
        assert (await client.post(f"/v2/{extension}/{tail}")).status_code == 200
    missing = await client.get(f"/v2/{extension}/region/r0/status")
    assert missing.status_code == 404
    assert missing.json()["error"] == f"Unable to find {kind} shared memory region: 'r0'"
    body = {"key": "/r0", "offset": 0, "byte_size": 64}
    refused = await client.post(f"/v2/{extension}/region/r0/register", json=body)
    assert refused.status_code == 400
    assert refused.json()["error"].startswith(
        f"failed to register {kind} shared memory region 'r0': "
    )


async def test_the_body_is_json_whatever_its_content_type(client: httpx.AsyncClient) -> None:
    # tritonclient sends its JSON body with no Content-Type; before, FastAPI refused it.
    plain = await client.post(
        "/v2/repository/models/echo/unload", content=b'{"parameters": {"unload_dependents": false}}'
    )
    assert plain.status_code == 200
    bad = await client.post("/v2/repository/models/echo/load", content=b"{oops")
    assert bad.status_code == 400
    assert "not JSON" in bad.json()["error"]
    extra = await client.post("/v2/repository/models/echo/load", json={"config": "{}"})
    assert extra.status_code == 400
    assert "config" in extra.json()["error"]


async def test_a_reload_that_fails_keeps_the_old_version_serving(
    client: httpx.AsyncClient, fakes: SignallingLoader
) -> None:
    old = fakes.backends["echo"]
    fakes.fail_with = ModelLoadError("the new file is not a model")
    response = await client.post("/v2/repository/models/echo/load")
    assert response.status_code == 400
    assert response.json()["error"] == (
        "failed to load 'echo': version 1: the new file is not a model"
    )
    assert not old.closed
    assert (await client.post("/v2/models/echo/infer", json=infer_body())).status_code == 200
    index = (await client.post("/v2/repository/index")).json()
    reason = "reload failed, the version loaded before serves: the new file is not a model"
    assert {
        "name": "echo",
        "version": "1",
        "state": "READY",
        "reason": reason,
        "labels": [],
    } in index


async def test_typed_routes_and_the_openapi_document_follow_loads_and_unloads(
    client: httpx.AsyncClient, root: Path
) -> None:
    add_model(root, "later", 1)
    predict = {"inputs": {"x": [[1.0, 2.0, 3.0, 4.0]]}}
    assert (await client.post("/models/later/predict", json=predict)).status_code == 404
    assert (await client.post("/v2/repository/models/later/load")).status_code == 200
    assert (await client.post("/models/later/predict", json=predict)).status_code == 200
    assert "/models/later/predict" in (await client.get("/openapi.json")).json()["paths"]
    assert (await client.post("/v2/repository/models/later/unload")).status_code == 200
    assert (await client.post("/models/later/predict", json=predict)).status_code == 404
    assert "/models/later/predict" not in (await client.get("/openapi.json")).json()["paths"]
