"""Failures inside a backend: 500 naming the model and kind, nothing internal leaked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from backends.errors import InferenceError
from support.app import make_settings, open_client
from support.fake_backend import FakeLoader, echo_signature

SECRET_DETAIL = "/opt/internal/path/to/kernel.cc:42 CUDA out of memory"


@pytest.fixture
async def exploding(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Three fake models whose first inference fails with internal details; later ones work."""
    for name in ("boom", "picky", "crashy"):
        (tmp_path / name / "1").mkdir(parents=True)
    loader = FakeLoader(echo_signature(width=2))
    async with open_client(make_settings(tmp_path), loader=loader) as http:
        backends = loader.backends
        backends["boom"].fail_next.append(InferenceError(SECRET_DETAIL, kind="Fail"))
        backends["picky"].fail_next.append(InferenceError(SECRET_DETAIL, kind="InvalidArgument"))
        # Not an InferenceError: a backend breaking its contract.
        backends["crashy"].fail_next.append(ZeroDivisionError(SECRET_DETAIL))
        yield http


BODY = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}


async def test_runtime_failure_is_500_without_internals_and_the_model_recovers(
    exploding: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    failed = await exploding.post("/v2/models/boom/infer", json=BODY)
    assert failed.status_code == 500
    assert failed.json() == {"error": "inference failed in model 'boom' version 1 (Fail)"}
    assert SECRET_DETAIL in caplog.text  # the full error goes to the log
    recovered = await exploding.post("/v2/models/boom/infer", json=BODY)
    assert recovered.status_code == 200
    assert recovered.json()["outputs"][0]["data"] == [1.0, 2.0]


async def test_invalid_argument_from_the_runtime_is_a_400(exploding: httpx.AsyncClient) -> None:
    response = await exploding.post("/v2/models/picky/infer", json=BODY)
    assert response.status_code == 400
    assert "model 'picky' rejected the inputs" in response.json()["error"]
    assert SECRET_DETAIL not in response.text


async def test_a_backend_that_breaks_its_contract_is_a_generic_500(
    exploding: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await exploding.post("/v2/models/crashy/infer", json=BODY)
    assert response.status_code == 500
    assert response.json() == {
        "error": "inference failed in model 'crashy' version 1 (internal error)"
    }
    assert "ZeroDivisionError" in caplog.text
    assert (await exploding.post("/v2/models/crashy/infer", json=BODY)).status_code == 200
