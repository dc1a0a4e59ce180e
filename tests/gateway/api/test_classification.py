"""The classification extension on the inference route, and parameters never ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest

from demo_models import digits_split
from gateway.settings import Settings
from support.app import open_client
from support.paths import DEMO_MODELS

LABELS = [f"digit-{i}" for i in range(10)]


def digits_body(rows: int, outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    _, x_test, _, _ = digits_split()
    pixels = x_test[:rows].astype(np.float32)
    body: dict[str, Any] = {
        "inputs": [
            {
                "name": "pixels",
                "shape": list(pixels.shape),
                "datatype": "FP32",
                "data": pixels.ravel().tolist(),
            }
        ]
    }
    if outputs is not None:
        body["outputs"] = outputs
    return body


def expected(rows: int, k: int, labels: list[str] | None = None) -> list[str]:
    _, x_test, _, _ = digits_split()
    session = ort.InferenceSession(str(DEMO_MODELS / "digits" / "1" / "model.onnx"))
    names = [o.name for o in session.get_outputs()]
    probs = session.run(None, {"pixels": x_test[:rows].astype(np.float32)})[
        names.index("probabilities")
    ]
    out: list[str] = []
    for row in probs:
        for index in np.argsort(-row.astype(np.float64), kind="stable")[:k]:
            text = f"{float(row[index]):f}:{int(index)}"
            out.append(f"{text}:{labels[index]}" if labels else text)
    return out


async def infer(client: httpx.AsyncClient, model: str, body: Any) -> httpx.Response:
    return await client.post(f"/v2/models/{model}/infer", content=orjson.dumps(body))


async def test_top_k_of_each_row_as_score_index(client: httpx.AsyncClient) -> None:
    body = digits_body(4, [{"name": "probabilities", "parameters": {"classification": 3}}])
    response = await infer(client, "digits", body)
    assert response.status_code == 200, response.text
    (out,) = response.json()["outputs"]
    assert (out["name"], out["datatype"], out["shape"]) == ("probabilities", "BYTES", [4, 3])
    assert out["data"] == expected(4, 3)


async def test_k_past_the_class_count_is_capped(client: httpx.AsyncClient) -> None:
    body = digits_body(2, [{"name": "probabilities", "parameters": {"classification": 50}}])
    response = await infer(client, "digits", body)
    assert response.status_code == 200, response.text
    (out,) = response.json()["outputs"]
    assert out["shape"] == [2, 10]
    assert out["data"] == expected(2, 10)


async def test_binary_output_uses_length_prefixed_strings(client: httpx.AsyncClient) -> None:
    params = {"classification": 2, "binary_data": True}
    body = digits_body(1, [{"name": "probabilities", "parameters": params}])
    response = await infer(client, "digits", body)
    assert response.status_code == 200, response.text
    header_length = int(response.headers["inference-header-content-length"])
    header = orjson.loads(response.content[:header_length])
    (out,) = header["outputs"]
    assert (out["datatype"], out["shape"]) == ("BYTES", [1, 2])
    data, strings = response.content[header_length:], []
    while data:
        size = int.from_bytes(data[:4], "little")
        strings.append(data[4 : 4 + size].decode())
        data = data[4 + size :]
    assert strings == expected(1, 2)


async def test_labels_file_adds_the_label(repository: Path, settings: Settings) -> None:
    model_dir = repository / "digits"
    (model_dir / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    config = model_dir / "config.yaml"
    config.write_text(
        config.read_text(encoding="utf-8") + "labels: {probabilities: labels.txt}\n",
        encoding="utf-8",
    )
    async with open_client(settings) as client:
        body = digits_body(3, [{"name": "probabilities", "parameters": {"classification": 2}}])
        response = await infer(client, "digits", body)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == expected(3, 2, LABELS)


async def test_labels_survive_a_load_with_a_config_override(
    repository: Path, settings: Settings
) -> None:
    model_dir = repository / "digits"
    (model_dir / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    (model_dir / "config.yaml").write_text("labels: {probabilities: labels.txt}\n")
    async with open_client(settings) as client:
        override = {"parameters": {"config": orjson.dumps({"max_batch_size": 16}).decode()}}
        loaded = await client.post("/v2/repository/models/digits/load", json=override)
        assert loaded.status_code == 200, loaded.text
        body = digits_body(1, [{"name": "probabilities", "parameters": {"classification": 1}}])
        response = await infer(client, "digits", body)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == expected(1, 1, LABELS)


@pytest.mark.parametrize("k", [0, -1, 1.5, "3", True, None])
async def test_invalid_k_is_a_400(client: httpx.AsyncClient, k: Any) -> None:
    body = digits_body(1, [{"name": "probabilities", "parameters": {"classification": k}}])
    response = await infer(client, "digits", body)
    if k is None:  # a null parameter is no parameter
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400, response.text
    assert "parameters.classification must be a positive integer" in response.json()["error"]


async def test_a_non_numeric_output_cannot_be_classified(client: httpx.AsyncClient) -> None:
    inputs = [{"name": "in_bytes", "shape": [1, 2], "datatype": "BYTES", "data": ["a", "b"]}]
    body = {
        "inputs": inputs,
        "outputs": [{"name": "out_bytes", "parameters": {"classification": 1}}],
    }
    response = await infer(client, "identity", body)
    assert response.status_code == 400, response.text
    assert "output 'out_bytes': parameters.classification" in response.json()["error"]
    assert "not numeric" in response.json()["error"]


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ("request", "request parameter 'priority'"),
        ("input", "input 'pixels': parameter 'priority'"),
        ("output", "output 'probabilities': parameter 'priority'"),
    ],
)
async def test_unknown_parameters_are_a_400_naming_them(
    client: httpx.AsyncClient, where: str, named: str
) -> None:
    body = digits_body(1, [{"name": "probabilities"}])
    target = {
        "request": body,
        "input": body["inputs"][0],
        "output": body["outputs"][0],
    }[where]
    target["parameters"] = {"priority": 1}
    response = await infer(client, "digits", body)
    assert response.status_code == 400, response.text
    assert named in response.json()["error"]
    assert "is not supported" in response.json()["error"]


async def test_implemented_parameters_are_accepted(client: httpx.AsyncClient) -> None:
    body = digits_body(1, [{"name": "probabilities", "parameters": {"binary_data": False}}])
    body["parameters"] = {"timeout": 5_000_000, "binary_data_output": False}
    response = await infer(client, "digits", body)
    assert response.status_code == 200, response.text
