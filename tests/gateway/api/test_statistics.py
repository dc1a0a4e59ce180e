"""The statistics extension over ASGI: Triton's shape, from what the batchers counted."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from backends.errors import InferenceError
from support.app import make_settings, open_client
from support.fake_backend import FakeLoader


def body(rows: int) -> dict[str, Any]:
    return {
        "inputs": [{"name": "x", "shape": [rows, 4], "datatype": "FP32", "data": [1.0] * 4 * rows}]
    }


def repository(root: Path, names: tuple[str, ...] = ("echo", "other")) -> Path:
    for name in names:
        (root / name / "1").mkdir(parents=True)
        (root / name / "1" / "model.onnx").write_bytes(b"fake")
    return root


def zero() -> dict[str, int]:
    return {"count": 0, "ns": 0}


async def test_a_fresh_model_has_zero_statistics(tmp_path: Path) -> None:
    async with open_client(make_settings(repository(tmp_path)), loader=FakeLoader()) as http:
        response = await http.get("/v2/models/echo/stats")
    assert response.status_code == 200
    assert response.json() == {
        "model_stats": [
            {
                "name": "echo",
                "version": "1",
                "last_inference": 0,
                "inference_count": 0,
                "execution_count": 0,
                "inference_stats": {
                    key: zero()
                    for key in (
                        "success",
                        "fail",
                        "queue",
                        "compute_input",
                        "compute_infer",
                        "compute_output",
                    )
                },
                "batch_stats": [],
            }
        ]
    }


async def test_inferences_show_in_the_statistics(tmp_path: Path) -> None:
    loader = FakeLoader()
    async with open_client(make_settings(repository(tmp_path)), loader=loader) as http:
        before_ms = time.time_ns() // 1_000_000
        for rows in (1, 2, 1):
            assert (await http.post("/v2/models/echo/infer", json=body(rows))).status_code == 200
        loader.backends["echo"].fail_next.append(InferenceError("boom", kind="Fail"))
        assert (await http.post("/v2/models/echo/infer", json=body(1))).status_code == 500
        every = (await http.get("/v2/models/stats")).json()["model_stats"]
        one = (await http.get("/v2/models/echo/versions/1/stats")).json()["model_stats"]
    assert [(s["name"], s["version"]) for s in every] == [("echo", "1"), ("other", "1")]
    assert one == [every[0]]
    echo = every[0]
    assert (echo["inference_count"], echo["execution_count"]) == (4, 3)
    assert before_ms <= echo["last_inference"] <= time.time_ns() // 1_000_000
    stats = echo["inference_stats"]
    assert stats["success"]["count"] == 3
    assert stats["success"]["ns"] > 0
    assert stats["fail"]["count"] == 1
    assert stats["queue"]["count"] == 4
    assert stats["compute_infer"]["count"] == 3
    assert [(b["batch_size"], b["compute_infer"]["count"]) for b in echo["batch_stats"]] == [
        (1, 2),
        (2, 1),
    ]
    assert every[1]["inference_count"] == 0


@pytest.mark.parametrize("path", ["/v2/models/nope/stats", "/v2/models/echo/versions/2/stats"])
async def test_unknown_models_are_404(tmp_path: Path, path: str) -> None:
    async with open_client(make_settings(repository(tmp_path)), loader=FakeLoader()) as http:
        response = await http.get(path)
    assert response.status_code == 404
    assert "error" in response.json()


async def test_statistics_need_a_token(tmp_path: Path) -> None:
    async with open_client(make_settings(repository(tmp_path)), loader=FakeLoader()) as http:
        response = await http.get("/v2/models/stats", headers={"Authorization": ""})
    assert response.status_code == 401


async def test_server_metadata_lists_the_extension(tmp_path: Path) -> None:
    async with open_client(make_settings(repository(tmp_path)), loader=FakeLoader()) as http:
        assert "statistics" in (await http.get("/v2")).json()["extensions"]
