"""Mapping a Triton model configuration onto config.yaml's ModelConfig."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.dataplane.repository import config_override
from gateway.errors import InvalidInput
from gateway.repository.config import LatestVersions, ModelConfig, SpecificVersions


def override(triton: dict[str, Any], base: ModelConfig | None = None) -> ModelConfig:
    return config_override("m", json.dumps(triton), base or ModelConfig())


def test_the_mapped_fields_override_the_base() -> None:
    base = ModelConfig(allow_non_finite=True)
    config = override(
        {
            "name": "m",
            "platform": "onnxruntime_onnx",
            "max_batch_size": 16,
            "dynamic_batching": {
                "preferred_batch_size": [8, 4],
                "max_queue_delay_microseconds": 1500,
            },
            "instance_group": [{"count": 2, "kind": "KIND_CPU"}],
            "version_policy": {"specific": {"versions": [2]}},
        },
        base,
    )
    assert config.batching.max_batch_size == 16
    assert config.batching.preferred_batch_sizes == [4, 8]
    assert config.batching.max_queue_delay_ms == 1.5
    assert config.instances == 2
    assert config.version_policy == SpecificVersions(specific=[2])
    assert config.allow_non_finite  # what the body does not name stays as config.yaml says


def test_max_batch_size_zero_turns_batching_off_and_latest_maps() -> None:
    config = override({"max_batch_size": 0, "version_policy": {"latest": {"num_versions": 2}}})
    assert not config.batching.enabled
    assert config.version_policy == LatestVersions(latest=2)
    assert override({"version_policy": {"all": {}}}).version_policy == "all"
    delay = {"dynamic_batching": {"max_queue_delay_microseconds": "2000"}}
    assert override(delay).batching.max_queue_delay_ms == 2.0  # protobuf JSON's int64


@pytest.mark.parametrize(
    ("triton", "named"),
    [
        ({"output": [{"name": "y", "is_shape_tensor": True}]}, "config.output[0].is_shape_tensor"),
        ({"sequence_batching": {}}, "config.sequence_batching"),
        ({"backend": "python"}, "config.backend"),
        ({"instance_group": [{"count": 1, "kind": "KIND_MODEL"}]}, "KIND_MODEL"),
        ({"instance_group": [{"count": 1, "gpus": [0, 1]}]}, "names several GPUs"),
        ({"instance_group": [{"count": 1}, {"count": 1}]}, "exactly one group"),
        ({"version_policy": {"newest": {}}}, "config.version_policy.newest"),
        ({"instance_group": [{"count": 0}]}, "parameters.config"),
        (
            {"dynamic_batching": {"max_queue_delay_microseconds": "soon"}},
            "max_queue_delay_microseconds must be a whole number",
        ),
        ([], "must be a JSON object"),
    ],
)
def test_what_does_not_map_is_refused_naming_it(triton: Any, named: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        config_override("m", json.dumps(triton), ModelConfig())
    assert named in refused.value.message


def test_a_gpu_instance_asks_for_cuda_on_its_device_and_keeps_the_cpu_to_fall_back_on() -> None:
    config = override({"instance_group": [{"count": 2, "kind": "KIND_GPU", "gpus": [1]}]})
    assert config.execution_providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert config.cuda.device_id == 1
    assert config.instances == 2
    tensorrt = {"gpu_execution_accelerator": [{"name": "tensorrt"}]}
    accelerated = override({"optimization": {"execution_accelerators": tensorrt}})
    assert accelerated.execution_providers[:2] == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
    ]


def test_queue_policy_and_onnxruntime_parameters_map() -> None:
    config = override(
        {
            "dynamic_batching": {
                "default_queue_policy": {
                    "max_queue_size": 7,
                    "default_timeout_microseconds": "2500",
                    "timeout_action": "REJECT",
                }
            },
            "parameters": {"intra_op_thread_count": {"string_value": "3"}},
        }
    )
    assert config.batching.max_queue_size == 7
    assert config.batching.default_timeout_ms == 2.5
    assert config.intra_op_threads == 3
    with pytest.raises(InvalidInput, match="REJECT"):
        override({"dynamic_batching": {"default_queue_policy": {"timeout_action": "DELAY"}}})
    with pytest.raises(InvalidInput, match=r"config\.parameters\.execution_mode"):
        override({"parameters": {"execution_mode": {"string_value": "1"}}})
