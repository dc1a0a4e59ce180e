"""Triton's ``model_warmup`` in ``config.pbtxt``: each sample's inputs made as it says
(random values, zeros or a file of raw bytes in ``warmup/``), run ``count`` times before
the version takes traffic; a sample that does not fit the model fails the load naming
it (issue 22)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from gateway.repository import warmup
from gateway.repository.config import ConfigError, load_model_config
from support.app import make_settings, open_client
from support.onnx_models import adder_model, write_model

HEAD = 'name: "adder"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
SAMPLES = """
model_warmup [
  {
    name: "zeros"
    batch_size: 2
    count: 3
    inputs { key: "a" value: { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } }
    inputs { key: "b" value: { data_type: TYPE_FP32 dims: [ 3 ] random_data: true } }
  },
  {
    name: "from files"
    batch_size: 1
    inputs { key: "a" value: { data_type: TYPE_FP32 dims: [ 3 ] input_data_file: "a.raw" } }
    inputs { key: "b" value: { data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } }
  }
]
"""


def adder(root: Path, pbtxt: str, raw: bytes | None = None) -> Path:
    write_model(root, "adder", adder_model())
    model = root / "adder"
    (model / "config.pbtxt").write_text(pbtxt)
    if raw is not None:
        (model / "warmup").mkdir()
        (model / "warmup" / "a.raw").write_bytes(raw)
    return model


def test_samples_become_the_warmup_section(tmp_path: Path) -> None:
    config = load_model_config(adder(tmp_path, HEAD + SAMPLES))
    assert config.warmup is not None
    first, second = config.warmup.samples
    assert (first.name, first.count) == ("zeros", 3)
    assert first.inputs["a"].shape == [2, 3]
    assert first.inputs["a"].values == "zeros"
    assert first.inputs["b"].values == "random"
    assert first.inputs["a"].datatype == "FP32"
    assert second.count == 1  # Triton's count 0: once
    assert second.inputs["a"].file == "warmup/a.raw"


async def test_the_samples_run_before_the_version_serves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    adder(tmp_path, HEAD + SAMPLES, np.arange(3, dtype="<f4").tobytes())
    caplog.set_level(logging.INFO)
    async with open_client(make_settings(tmp_path)) as http:
        ready = await http.get("/v2/models/adder/ready")
    assert ready.status_code == 200
    assert "'adder' version 1 warmed up: 4 call(s)" in caplog.text


@pytest.mark.parametrize(
    ("raw", "sample", "reason"),
    [
        (
            np.arange(2, dtype="<f4").tobytes(),
            SAMPLES,
            "warmup.samples[1] ('from files').inputs.a.file",
        ),
        (
            None,
            'model_warmup [ { batch_size: 1 inputs { key: "a" value: '
            "{ data_type: TYPE_FP32 dims: [ 3 ] zero_data: true } } } ]",
            "warmup.samples[0].inputs must name every input of the model and nothing else: "
            "missing ['b']",
        ),
        (
            None,
            'model_warmup [ { batch_size: 1 inputs [ { key: "a" value: { data_type: TYPE_FP32 '
            'dims: [ 4 ] zero_data: true } }, { key: "b" value: { data_type: TYPE_FP32 '
            "dims: [ 3 ] zero_data: true } } ] } ]",
            "warmup.samples[0].inputs.a: shape [1, 4], the input takes [-1, 3]",
        ),
        (
            None,
            'model_warmup [ { batch_size: 1 inputs [ { key: "a" value: { data_type: TYPE_INT32 '
            'dims: [ 3 ] zero_data: true } }, { key: "b" value: { data_type: TYPE_FP32 '
            "dims: [ 3 ] zero_data: true } } ] } ]",
            "warmup.samples[0].inputs.a: datatype INT32, the input's is FP32",
        ),
    ],
)
async def test_a_sample_that_does_not_fit_fails_the_load_naming_it(
    tmp_path: Path, raw: bytes | None, sample: str, reason: str
) -> None:
    adder(tmp_path, HEAD + sample, raw)
    async with open_client(make_settings(tmp_path)) as http:
        index = (await http.post("/v2/repository/index")).json()
    (entry,) = [e for e in index if e["name"] == "adder"]
    assert entry["state"] == "UNAVAILABLE"
    assert reason in entry["reason"]


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        (
            'model_warmup [ { batch_size: 1 inputs { key: "a" value: { data_type: TYPE_FP32 '
            "dims: [ 3 ] } } } ]",
            "config.model_warmup[0].inputs.a needs zero_data, random_data or input_data_file",
        ),
        (
            'model_warmup [ { batch_size: 1 inputs { key: "a" value: { data_type: TYPE_FP32 '
            "dims: [ -1 ] zero_data: true } } } ]",
            "a warm-up sample has sizes, not -1",
        ),
        (
            "model_warmup [ { batch_size: 0 } ]",
            "config.model_warmup[0].batch_size must be at least 1",
        ),
        (
            'model_warmup [ { batch_size: 1 inputs { key: "a" value: { data_type: TYPE_FP32 '
            "dims: [ 4096, 4096, 4096 ] zero_data: true } } } ]",
            "holds 68719476736 elements; a warm-up input holds at most 16777216",
        ),
        (
            'model_warmup [ { batch_size: 1 inputs { key: "a" value: { data_type: TYPE_FP32 '
            'dims: [ 3 ] input_data_file: "../../../etc/passwd" } } } ]',
            "warmup.samples[0].inputs.a.file",
        ),
    ],
)
def test_a_sample_that_cannot_be_honoured_is_refused(
    tmp_path: Path, sample: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_model_config(adder(tmp_path, HEAD + sample))
    assert message in str(caught.value)


async def test_a_sample_file_over_the_bound_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warmup, "MAX_SAMPLE_FILE_BYTES", 8)
    adder(tmp_path, HEAD + SAMPLES, np.arange(3, dtype="<f4").tobytes())
    async with open_client(make_settings(tmp_path)) as http:
        index = (await http.post("/v2/repository/index")).json()
    (entry,) = [e for e in index if e["name"] == "adder"]
    assert entry["state"] == "UNAVAILABLE"
    assert "a.raw is 12 bytes, over 8" in entry["reason"]


async def test_the_config_answer_prints_the_samples_as_triton_does(tmp_path: Path) -> None:
    adder(tmp_path, HEAD + SAMPLES, np.arange(3, dtype="<f4").tobytes())
    async with open_client(make_settings(tmp_path)) as http:
        config = (await http.get("/v2/models/adder/config")).json()
    zeros, files = config["model_warmup"]
    assert zeros == {
        "name": "zeros",
        "batch_size": 2,
        "count": 3,
        "inputs": {
            "a": {"data_type": "TYPE_FP32", "dims": [3], "zero_data": True},
            "b": {"data_type": "TYPE_FP32", "dims": [3], "random_data": True},
        },
    }
    assert files["inputs"]["a"] == {
        "data_type": "TYPE_FP32",
        "dims": [3],
        "input_data_file": "a.raw",
    }
    assert files["count"] == 1


async def test_generated_warmup_prints_as_random_data_and_none_prints_empty(tmp_path: Path) -> None:
    write_model(tmp_path, "adder", adder_model())
    (tmp_path / "adder" / "config.yaml").write_text("warmup: {runs: 2, batch_sizes: [1, 4]}\n")
    write_model(tmp_path, "plain", adder_model())
    async with open_client(make_settings(tmp_path)) as http:
        generated = (await http.get("/v2/models/adder/config")).json()["model_warmup"]
        plain = (await http.get("/v2/models/plain/config")).json()["model_warmup"]
    assert [(w["batch_size"], w["count"]) for w in generated] == [(1, 2), (4, 2)]
    assert generated[0]["inputs"]["a"] == {
        "data_type": "TYPE_FP32",
        "dims": [3],
        "random_data": True,
    }
    assert plain == []
