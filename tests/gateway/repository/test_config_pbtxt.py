"""Triton's ``config.pbtxt`` read as it is: mapped fields, declared tensors checked against
the ONNX file, every field tensorgate cannot honour refused naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gateway.repository.config import ConfigError, load_model_config
from gateway.repository.triton_config import MAX_PBTXT_BYTES
from support.app import make_settings, open_client
from support.onnx_models import adder_model, identity_model, write_model

# Triton's "simple"-style configuration of the adder (a + b -> sum, FP32 [batch, 3]).
ADDER = """
name: "adder"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  { name: "a" data_type: TYPE_FP32 dims: [ 3 ] },
  { name: "b" data_type: TYPE_FP32 dims: [ 3 ] }
]
output [ { name: "sum" data_type: TYPE_FP32 dims: [ 3 ] label_filename: "labels.txt" } ]
dynamic_batching { preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 500 }
instance_group [ { count: 2 kind: KIND_CPU } ]
version_policy: { latest: { num_versions: 1 } }
"""


def adder_repo(root: Path, pbtxt: str = ADDER) -> Path:
    write_model(root, "adder", adder_model())
    (root / "adder" / "labels.txt").write_text("x\ny\nz\n")
    (root / "adder" / "config.pbtxt").write_text(pbtxt)
    return root / "adder"


def test_the_mapped_fields_land_in_the_config(tmp_path: Path) -> None:
    config = load_model_config(adder_repo(tmp_path))
    assert config.batching.enabled
    assert config.batching.max_batch_size == 8
    assert config.batching.preferred_batch_sizes == [4]
    assert config.batching.max_queue_delay_ms == 0.5
    assert config.instances == 2
    assert config.select_versions([1, 2, 3]) == [3]
    assert config.class_labels == {"sum": ("x", "y", "z")}
    assert config.declaration is not None
    assert [t.name for t in config.declaration.inputs] == ["a", "b"]


def test_absent_fields_take_tritons_defaults(tmp_path: Path) -> None:
    model = adder_repo(tmp_path, 'name: "adder" backend: "onnxruntime"\n')
    config = load_model_config(model)
    assert not config.batching.enabled  # max_batch_size 0: no batch axis
    assert config.declaration is None  # nothing declared: the ONNX file describes itself
    (model / "config.pbtxt").write_text("max_batch_size: 4\n")
    assert load_model_config(model).batching.max_queue_delay_ms == 0  # no dynamic_batching


@pytest.mark.parametrize(
    ("pbtxt", "message"),
    [
        ("max_batch_size: 'many'\n", "cannot parse"),
        ("no_such_field: 1\n", "cannot parse"),
        ('name: "other"\n', "config.name 'other' is not the model's ('adder')"),
        ('platform: "tensorrt_plan"\n', "config.platform 'tensorrt_plan' is not served"),
        ("sequence_batching { }\n", "sequence batching is not served yet"),
        ("ensemble_scheduling { }\n", "config.ensemble_scheduling"),
        ('model_warmup [ { name: "w" batch_size: 2 } ]\n', "config.model_warmup[0].batch_size"),
        (
            'input [ { name: "a" data_type: TYPE_FP32 dims: [ 3 ] is_shape_tensor: true } ]\n',
            "config.input[0].is_shape_tensor",
        ),
        ("dynamic_batching { priority_levels: 2 }\n", "config.dynamic_batching.priority_levels"),
        ('output [ { name: "sum" label_filename: "/etc/passwd" } ]\n', "an absolute path"),
        ('output [ { name: "sum" label_filename: "../../x" } ]\n', "climbing out"),
        ("response_cache { enable: true }\n", "config.response_cache"),
    ],
)
def test_what_cannot_be_honoured_fails_the_load_naming_it(
    tmp_path: Path, pbtxt: str, message: str
) -> None:
    model = adder_repo(tmp_path, pbtxt)
    with pytest.raises(ConfigError) as caught:
        load_model_config(model)
    assert str(model / "config.pbtxt") in str(caught.value)
    assert message in str(caught.value)


def test_both_config_files_are_an_error_naming_them(tmp_path: Path) -> None:
    model = adder_repo(tmp_path)
    (model / "config.yaml").write_text("instances: 1\n")
    with pytest.raises(ConfigError, match=r"has both config\.yaml and config\.pbtxt"):
        load_model_config(model)


def test_an_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    model = adder_repo(tmp_path, "#" * (MAX_PBTXT_BYTES + 1))
    with pytest.raises(ConfigError, match=f"larger than {MAX_PBTXT_BYTES} bytes"):
        load_model_config(model)


async def test_the_model_serves_and_its_config_reads_as_triton_prints_it(tmp_path: Path) -> None:
    adder_repo(tmp_path)
    write_model(tmp_path, "image", identity_model(["FP32"]))
    (tmp_path / "image" / "config.pbtxt").write_text(
        'max_batch_size: 4\ninput [ { name: "in_fp32" data_type: TYPE_FP32 format: FORMAT_NCHW'
        " dims: [ 2 ] } ]\ndynamic_batching { }\n"
    )
    async with open_client(make_settings(tmp_path)) as http:
        ones = {"shape": [1, 3], "datatype": "FP32", "data": [1.0, 2.0, 3.0]}
        body = {"inputs": [{"name": "a", **ones}, {"name": "b", **ones}]}
        answer = await http.post("/v2/models/adder/infer", json=body)
        assert answer.status_code == 200
        assert answer.json()["outputs"][0]["data"] == [2.0, 4.0, 6.0]
        config = (await http.get("/v2/models/adder/config")).json()
        assert config["max_batch_size"] == 8
        assert config["instance_group"][0]["count"] == 2
        assert config["output"][0]["label_filename"] == "labels.txt"
        classified = {"name": "sum", "parameters": {"classification": 1}}
        top = await http.post("/v2/models/adder/infer", json={**body, "outputs": [classified]})
        assert top.json()["outputs"][0]["data"] == ["6.000000:2:z"]
        image = (await http.get("/v2/models/image/config")).json()
        assert image["input"][0]["format"] == "FORMAT_NCHW"
        assert image["max_batch_size"] == 4


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ('{ name: "a" data_type: TYPE_FP32 dims: [ 4 ] }', "config input 'a': dims [4]"),
        ('{ name: "a" data_type: TYPE_INT32 dims: [ 3 ] }', "data_type TYPE_INT32"),
        ('{ name: "c" data_type: TYPE_FP32 dims: [ 3 ] }', "config declares input 'c'"),
    ],
)
async def test_a_model_that_does_not_fit_its_declaration_never_serves(
    tmp_path: Path, declared: str, message: str
) -> None:
    adder_repo(tmp_path, f"max_batch_size: 8\ninput [ {declared} ]\n")
    async with open_client(make_settings(tmp_path)) as http:
        index = (await http.post("/v2/repository/index")).json()
        ready = await http.get("/v2/models/adder/ready")
    assert ready.status_code != 200
    (entry,) = [e for e in index if e["name"] == "adder"]
    assert entry["state"] == "UNAVAILABLE"
    assert message in entry["reason"]


async def test_a_load_request_config_declares_like_a_pbtxt(tmp_path: Path) -> None:
    adder_repo(tmp_path, 'name: "adder"\nmax_batch_size: 8\n')
    async with open_client(make_settings(tmp_path)) as http:
        bad = '{"input": [{"name": "a", "data_type": "TYPE_FP64", "dims": [3]}]}'
        refused = await http.post(
            "/v2/repository/models/adder/load", json={"parameters": {"config": bad}}
        )
        assert refused.status_code == 400
        assert refused.json()["error"].startswith("failed to load 'adder'")
        assert "data_type TYPE_FP64, the model's is TYPE_FP32" in refused.json()["error"]
        broken = await http.post(
            "/v2/repository/models/adder/load", json={"parameters": {"config": "{nope"}}
        )
        assert broken.status_code == 400
        assert broken.json()["error"].startswith("failed to load 'adder'")
        still = await http.post(
            "/v2/models/adder/infer",
            json={
                "inputs": [
                    {"name": n, "shape": [1, 3], "datatype": "FP32", "data": [0.0] * 3}
                    for n in "ab"
                ]
            },
        )
        assert still.status_code == 200
        assert np.asarray(still.json()["outputs"][0]["data"]).tolist() == [0.0] * 3
