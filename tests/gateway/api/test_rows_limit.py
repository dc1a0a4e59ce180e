"""A request with more rows than its model's queue could ever hold is a 413, not a 503."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.batching.policy import BatchPolicy
from gateway.dataplane.inference import rows_limit
from support.app import make_settings, open_client
from support.fake_backend import FakeLoader

# Parts of at most 4 rows, at most 2 of them queued: 8 rows is the most one request can be.
CONFIG = "batching:\n  max_batch_size: 4\n  max_queue_size: 2\n"


def protocol(rows: int) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "x", "shape": [rows, 4], "datatype": "FP32", "data": [[1.0] * 4] * rows}
        ]
    }


def typed(rows: int) -> dict[str, Any]:
    return {"inputs": {"x": [[1.0] * 4] * rows}}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, FakeLoader]]:
    (tmp_path / "echo" / "1").mkdir(parents=True)
    (tmp_path / "echo" / "1" / "model.onnx").write_bytes(b"fake")
    (tmp_path / "echo" / "config.yaml").write_text(CONFIG)
    fakes = FakeLoader()
    async with open_client(make_settings(tmp_path), fakes) as http:
        yield http, fakes


@pytest.mark.parametrize(
    ("path", "body"), [("/v2/models/echo/infer", protocol), ("/models/echo/predict", typed)]
)
async def test_rows_past_what_the_queue_holds_are_413_naming_the_limit(
    client: tuple[httpx.AsyncClient, FakeLoader], path: str, body: Any
) -> None:
    # Fails before: 503 + Retry-After on an idle server, every time, after a full decode.
    http, fakes = client
    refused = await http.post(path, json=body(9))
    assert refused.status_code == 413
    assert "Retry-After" not in refused.headers
    assert (
        "input 'x' has 9 rows; this model takes at most 8 rows in one request"
        in (refused.json()["error"])
    )
    assert fakes.backends["echo"].batches == []
    accepted = await http.post(path, json=body(8))
    assert accepted.status_code == 200
    assert sorted(fakes.backends["echo"].batch_sizes) == [4, 4]


def test_the_limit_is_what_the_batcher_can_queue_and_none_unbatched() -> None:
    assert rows_limit(BatchPolicy(max_batch_size=64, max_queue_size=128)) == 8192
    assert rows_limit(BatchPolicy(batching=False)) is None
