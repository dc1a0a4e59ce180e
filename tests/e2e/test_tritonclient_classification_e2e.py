"""End to end: the official ``tritonclient.http`` asks for classifications
(``InferRequestedOutput(name, class_count=k)``), binary and JSON, from a real
``tensorgate serve`` whose digits model has a labels file; tritonclient's defaults send
no parameter tensorgate refuses."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from demo_models import digits_split
from support.app import bearer, make_settings
from support.paths import DEMO_MODELS
from support.server_process import ServerProcess, serving

pytestmark = pytest.mark.e2e

TOKEN = bearer(make_settings(DEMO_MODELS))
DIGITS = DEMO_MODELS / "digits" / "1" / "model.onnx"
LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def auth() -> dict[str, str]:
    """A fresh dict per call: tritonclient adds its own headers to the one it gets."""
    return {"Authorization": TOKEN}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root: Path = tmp_path_factory.mktemp("models")
    shutil.copytree(DEMO_MODELS / "digits", root / "digits")
    (root / "digits" / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    config = root / "digits" / "config.yaml"
    config.write_text(
        config.read_text(encoding="utf-8") + "labels: {probabilities: labels.txt}\n",
        encoding="utf-8",
    )
    with serving(root) as process:
        yield process


@pytest.fixture
def client(server: ServerProcess) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=server.base_url.removeprefix("http://"))


def expected(batch: np.ndarray, k: int) -> list[list[str]]:
    _, probabilities = ort.InferenceSession(str(DIGITS)).run(None, {"pixels": batch})
    rows = []
    for row in probabilities:
        top = np.argsort(-row.astype(np.float64), kind="stable")[:k]
        rows.append([f"{float(row[i]):f}:{int(i)}:{LABELS[i]}" for i in top])
    return rows


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_class_count_returns_the_top_classes_with_labels(
    client: triton.InferenceServerClient, binary: bool
) -> None:
    _, x_test, _, y_test = digits_split()
    batch = x_test[:8]
    tensor = triton.InferInput("pixels", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=binary)
    wanted = triton.InferRequestedOutput("probabilities", binary_data=binary, class_count=3)
    result = client.infer("digits", [tensor], outputs=[wanted], headers=auth())
    got = result.as_numpy("probabilities")
    assert got is not None
    assert got.shape == (8, 3)
    # tritonclient gives bytes from binary data and str from JSON.
    text = [[v.decode() if isinstance(v, bytes) else v for v in row] for row in got.tolist()]
    assert text == expected(batch, 3)
    out = result.get_output("probabilities")
    assert out is not None
    assert out["datatype"] == "BYTES"
    assert ("binary_data_size" in out.get("parameters", {})) is binary
    # The best class is the model's label, mostly right.
    best = [int(row[0].split(":")[1]) for row in text]
    assert np.mean(np.array(best) == y_test[:8]) >= 0.75


def test_a_parameter_not_implemented_is_refused_naming_it(
    client: triton.InferenceServerClient,
) -> None:
    _, x_test, _, _ = digits_split()
    tensor = triton.InferInput("pixels", [1, 64], "FP32")
    tensor.set_data_from_numpy(x_test[:1])
    with pytest.raises(InferenceServerException, match="request parameter 'priority'"):
        client.infer("digits", [tensor], priority=3, headers=auth())
