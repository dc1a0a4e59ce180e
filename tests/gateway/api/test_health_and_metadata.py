"""Health, server metadata, model metadata, readiness and the repository index over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from support.app import make_settings, open_client


async def test_server_metadata_and_health(client: httpx.AsyncClient) -> None:
    meta = await client.get("/v2")
    assert meta.status_code == 200
    assert meta.json()["name"] == "tensorgate"
    # Exactly the extensions implemented: clients decide what to send from this list.
    assert sorted(meta.json()["extensions"]) == [
        "binary_tensor_data",
        "classification",
        "model_configuration",
        "model_repository",
        "statistics",
        "system_shared_memory",
    ]
    assert (await client.get("/v2/health/live")).json() == {"live": True}
    ready = await client.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


async def test_model_metadata_follows_the_protocol(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/models/digits")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "digits"
    assert body["versions"] == ["1"]
    assert body["platform"] == "onnxruntime_onnx"
    assert body["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}]
    assert body["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
    ]
    assert body["parameters"]["execution_provider"] == "CPUExecutionProvider"
    versioned = await client.get("/v2/models/digits/versions/1")
    assert versioned.json()["inputs"] == body["inputs"]


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v2/models/nope", 404, "Request for unknown model: 'nope' is not found"),
        (
            "/v2/models/digits/versions/9",
            404,
            "Request for unknown model: 'digits' version 9 is not found",
        ),
        ("/v2/models/nope/ready", 404, "Request for unknown model: 'nope' is not found"),
        ("/v2/models/digits/versions/0/ready", 404, "'0' is not a version of model 'digits'"),
        ("/v2/nowhere", 404, "no such route"),
    ],
)
async def test_unknown_things_are_404_in_the_error_shape(
    client: httpx.AsyncClient, path: str, status: int, message: str
) -> None:
    response = await client.get(path)
    assert response.status_code == status
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("version", "status"),
    [("%C2%B9", 400), ("1" * 5000, 404), ("01", 404), ("%EF%BC%91", 400), ("%D9%A1", 400)],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/mlp/versions/{v}"),
        ("GET", "/v2/models/mlp/versions/{v}/ready"),
        ("POST", "/v2/models/mlp/versions/{v}/infer"),
        ("POST", "/models/mlp/versions/{v}/predict"),
    ],
)
async def test_odd_versions_are_refused_naming_the_format(
    client: httpx.AsyncClient, method: str, path: str, version: str, status: int
) -> None:
    # Fails before: superscript one and 5,000 digits answered 500; "01", fullwidth and
    # Arabic-Indic one answered as version 1. ASCII digits naming no version are 404, what
    # is not a number 400 (as Triton answers both).
    response = await client.request(method, path.format(v=version), json={"inputs": {}})
    assert response.status_code == status
    assert (
        "is not a version of model 'mlp': a version is a positive whole number"
        in (response.json()["error"])
    )


async def test_model_ready(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/models/mlp/ready")
    assert response.json() == {"name": "mlp", "version": "1", "ready": True}
    assert (await client.get("/v2/models/mlp/versions/1/ready")).status_code == 200


@pytest.fixture
async def broken_client(repository: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Demo models plus a corrupt one and one with an invalid config."""
    (repository / "broken" / "1").mkdir(parents=True)
    (repository / "broken" / "1" / "model.onnx").write_bytes(b"\x08garbage")
    (repository / "misconfigured" / "1").mkdir(parents=True)
    (repository / "misconfigured" / "config.yaml").write_text("instances: zero\n")
    async with open_client(make_settings(repository)) as http:
        yield http


async def test_broken_models_are_reported_and_do_not_disturb_others(
    broken_client: httpx.AsyncClient,
) -> None:
    ready = await broken_client.get("/v2/health/ready")
    assert ready.status_code == 503
    assert "broken/1 UNAVAILABLE" in ready.json()["error"]
    assert "misconfigured" in ready.json()["error"]
    model_ready = await broken_client.get("/v2/models/broken/ready")
    assert model_ready.status_code == 503
    infer = await broken_client.post("/v2/models/broken/infer", content=b"{}")
    assert infer.status_code == 503
    assert "no ready version" in infer.json()["error"]
    index = {e["name"]: e for e in (await broken_client.post("/v2/repository/index")).json()}
    assert index["broken"]["state"] == "UNAVAILABLE"
    assert "could not load" in index["broken"]["reason"]
    assert "instances" in index["misconfigured"]["reason"]
    assert index["digits"] == {
        "name": "digits",
        "version": "1",
        "state": "READY",
        "reason": "",
        "labels": [],
    }
    good = await broken_client.get("/v2/models/digits/ready")
    assert good.status_code == 200


async def test_relaxed_readiness_needs_only_one_ready_model(repository: Path) -> None:
    (repository / "broken" / "1").mkdir(parents=True)
    settings = make_settings(repository, readiness_requires_all_models=False)
    async with open_client(settings) as http:
        assert (await http.get("/v2/health/ready")).status_code == 200


async def test_empty_repository_is_not_ready(tmp_path: Path) -> None:
    async with open_client(make_settings(tmp_path)) as http:
        response = await http.get("/v2/health/ready")
    assert response.status_code == 503
    assert "no models" in response.json()["error"]
