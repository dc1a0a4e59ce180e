"""Failures inside a backend: 500 naming the model and kind, nothing internal leaked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest

from backends.base import Array, Backend, ModelSignature, RuntimeOptions, TensorSpec
from backends.errors import InferenceError
from support.app import make_settings, open_client

SECRET_DETAIL = "/opt/internal/path/to/kernel.cc:42 CUDA out of memory"


class ExplodingBackend:
    """A Backend whose inference fails with a runtime error carrying internal details."""

    signature = ModelSignature(
        inputs=(TensorSpec("x", np.dtype(np.float32), (None, 2)),),
        outputs=(TensorSpec("y", np.dtype(np.float32), (None, 2)),),
    )
    metadata: Mapping[str, str] = {"platform": "fake", "execution_provider": "none"}

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.calls = 0

    async def infer(
        self, inputs: Mapping[str, Array], output_names: Sequence[str] | None = None
    ) -> dict[str, Array]:
        self.calls += 1
        if self.calls == 1 and self.kind == "crash":
            raise ZeroDivisionError(SECRET_DETAIL)
        if self.calls == 1:
            raise InferenceError(SECRET_DETAIL, kind=self.kind)
        return {"y": np.asarray(inputs["x"])}

    async def close(self) -> None:
        return None


@pytest.fixture
async def exploding(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / "boom" / "1").mkdir(parents=True)
    (tmp_path / "picky" / "1").mkdir(parents=True)
    (tmp_path / "crashy" / "1").mkdir(parents=True)
    kinds = {"boom": "Fail", "picky": "InvalidArgument", "crashy": "crash"}

    def loader(path: Path, options: RuntimeOptions, name: str) -> Backend:
        return ExplodingBackend(kinds[path.parent.parent.name])

    async with open_client(make_settings(tmp_path), loader=loader) as http:
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
