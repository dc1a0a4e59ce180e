"""The model configuration extension over ASGI: Triton's JSON from signature and config.yaml."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.auth.principal import MODELS_INFER
from gateway.settings import Settings
from support.app import bearer, make_settings, open_client
from support.onnx_models import fixed_shape_model, write_model


async def test_config_of_a_demo_model_follows_triton(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2/models/digits/config")
    assert response.status_code == 200
    assert response.json() == {
        "name": "digits",
        "platform": "onnxruntime_onnx",
        "backend": "onnxruntime",
        "version_policy": {"all": {}},
        "max_batch_size": 64,
        "input": [
            {
                "name": "pixels",
                "data_type": "TYPE_FP32",
                "dims": [64],
                "format": "FORMAT_NONE",
                "optional": False,
            }
        ],
        "output": [
            {"name": "label", "data_type": "TYPE_INT64", "dims": [], "label_filename": ""},
            {
                "name": "probabilities",
                "data_type": "TYPE_FP32",
                "dims": [10],
                "label_filename": "",
            },
        ],
        "dynamic_batching": {
            "preferred_batch_size": [],
            "max_queue_delay_microseconds": 2000,
            "default_queue_policy": {
                "max_queue_size": 128,
                "default_timeout_microseconds": 30_000_000,
            },
        },
        "instance_group": [{"name": "digits", "kind": "KIND_CPU", "count": 1}],
        "parameters": {
            "execution_provider": {"string_value": "CPUExecutionProvider"},
            "execution_provider_requested": {"string_value": "CPUExecutionProvider"},
        },
        "model_warmup": [],
    }
    versioned = await client.get("/v2/models/digits/versions/1/config")
    assert versioned.json() == response.json()


async def test_config_yaml_shows_in_the_config(tmp_path: Path) -> None:
    write_model(tmp_path, "fixed", fixed_shape_model(), version=2)
    (tmp_path / "fixed" / "config.yaml").write_text("instances: 2\nversion_policy: {latest: 1}\n")
    write_model(tmp_path, "plain", fixed_shape_model())
    (tmp_path / "plain" / "config.yaml").write_text("version_policy: {specific: [1]}\n")
    async with open_client(make_settings(tmp_path)) as http:
        fixed = (await http.get("/v2/models/fixed/config")).json()
        plain = (await http.get("/v2/models/plain/versions/1/config")).json()
    # No batch axis: max_batch_size 0, full dims, no dynamic batching (Triton's meaning).
    assert fixed["max_batch_size"] == 0
    assert fixed["input"] == [
        {
            "name": "x",
            "data_type": "TYPE_FP32",
            "dims": [2, 2],
            "format": "FORMAT_NONE",
            "optional": False,
        }
    ]
    assert "dynamic_batching" not in fixed
    assert fixed["instance_group"][0]["count"] == 2
    assert fixed["version_policy"] == {"latest": {"num_versions": 1}}
    assert plain["version_policy"] == {"specific": {"versions": [1]}}


async def test_batching_settings_show_in_the_config(repository: Path) -> None:
    (repository / "adder" / "config.yaml").write_text(
        "batching: {max_batch_size: 8, max_queue_delay_ms: 0.5, preferred_batch_sizes: [4, 2],"
        " max_queue_size: 9, default_timeout_ms: null}\n"
    )
    async with open_client(make_settings(repository)) as http:
        config = (await http.get("/v2/models/adder/config")).json()
        identity = (await http.get("/v2/models/identity/config")).json()
    assert config["max_batch_size"] == 8
    assert config["input"][0] == {
        "name": "a",
        "data_type": "TYPE_FP32",
        "dims": [3],
        "format": "FORMAT_NONE",
        "optional": False,
    }
    assert config["dynamic_batching"] == {
        "preferred_batch_size": [2, 4],
        "max_queue_delay_microseconds": 500,
        "default_queue_policy": {"max_queue_size": 9, "default_timeout_microseconds": 0},
    }
    types = {tensor["name"]: tensor["data_type"] for tensor in identity["input"]}
    assert types["in_bytes"] == "TYPE_STRING"
    assert types["in_bool"] == "TYPE_BOOL"
    assert types["in_fp16"] == "TYPE_FP16"


async def test_a_labels_file_shows_as_the_outputs_label_filename(repository: Path) -> None:
    # Fails before: outputs carried no label_filename, so Triton tools could not find labels.
    digits = repository / "digits"
    (digits / "labels.txt").write_text("".join(f"digit {n}\n" for n in range(10)))
    config_file = digits / "config.yaml"
    config_file.write_text(config_file.read_text() + "labels: {probabilities: labels.txt}\n")
    async with open_client(make_settings(repository)) as http:
        config = (await http.get("/v2/models/digits/config")).json()
    labels = {output["name"]: output["label_filename"] for output in config["output"]}
    assert labels == {"label": "", "probabilities": "labels.txt"}
    assert all("label_filename" not in tensor for tensor in config["input"])


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/nope/config",
        "/v2/models/digits/versions/9/config",
        "/v2/models/digits/versions/01/config",
    ],
)
async def test_unknown_models_are_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert "error" in response.json()


async def test_a_version_that_is_not_a_number_is_400_in_tritons_words(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v2/models/digits/versions/1.5/config")
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "failed to get model version from specified version string '1.5'"
    )
    label_form = await client.get("/v2/models/digits/versions/x/config")
    assert label_form.status_code == 404  # it may yet be defined as a label
    assert label_form.json()["error"].startswith(
        "failed to get model version from specified version string 'x'"
    )


async def test_config_needs_models_read(client: httpx.AsyncClient, settings: Settings) -> None:
    anonymous = await client.get("/v2/models/digits/config", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    infer_only = {"Authorization": bearer(settings, scopes=(MODELS_INFER,))}
    response = await client.get("/v2/models/digits/config", headers=infer_only)
    assert response.status_code == 403


async def test_server_metadata_lists_the_extension(client: httpx.AsyncClient) -> None:
    assert "model_configuration" in (await client.get("/v2")).json()["extensions"]
